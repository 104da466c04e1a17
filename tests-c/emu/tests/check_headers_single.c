/* emu.headers.*: each vendor header also compiles on its own. */
#ifdef EMU_ONLY_BASE_RT
#include <acl/acl_base_rt.h>
static aclError probe(void)
{
    return ACL_ERROR_RT_NO_PERMISSION;
}
#else
#include <acl/acl_rt.h>
static aclError probe(void)
{
    return aclrtIpcMemClose(0) == ACL_SUCCESS ? ACL_SUCCESS : ACL_ERROR_RT_DRV_INTERNAL_ERROR;
}
#endif

int main(void)
{
    return probe() == 0;
}
