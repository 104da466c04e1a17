/*
 * emu.headers.*: the vendor-compatible headers compile cleanly as C11, C17,
 * C++11 and C++17 with -Wall -Wextra -Werror -pedantic, in any inclusion
 * order, and declare the vendor's names, values and prototypes.
 * Compiled (not run) by CTest; this file is valid C and C++.
 */
#include <acl/acl_base_rt.h>
#include <acl/acl.h>
#include <acl/acl_rt.h>
#include <acl/acl_base_rt.h>
#include <acl/acl.h>

#ifdef __cplusplus
#define EMU_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define EMU_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

#if !defined(INC_EXTERNAL_ACL_ACL_H_) || !defined(INC_EXTERNAL_ACL_ACL_RT_H_) || \
    !defined(INC_EXTERNAL_ACL_ACL_BASE_RT_H_)
#error "vendor include guards missing"
#endif

EMU_STATIC_ASSERT(ACL_RT_IPC_MEM_EXPORT_FLAG_DEFAULT == 0x0UL, "export default");
EMU_STATIC_ASSERT(ACL_RT_IPC_MEM_EXPORT_FLAG_DISABLE_PID_VALIDATION == 0x1UL, "export disable");
EMU_STATIC_ASSERT(ACL_RT_IPC_MEM_IMPORT_FLAG_DEFAULT == 0x0UL, "import default");
EMU_STATIC_ASSERT(ACL_RT_IPC_MEM_IMPORT_FLAG_ENABLE_PEER_ACCESS == 0x1UL, "import peer");
EMU_STATIC_ASSERT(ACL_RT_IPC_MEM_ATTR_ACCESS_LINK_SIO == 0, "sio");
EMU_STATIC_ASSERT(ACL_RT_IPC_MEM_ATTR_ACCESS_LINK_HCCS == 1, "hccs");
EMU_STATIC_ASSERT(ACL_RT_IPC_MEM_ATTR_ACCESS_LINK == 0, "attr type");
EMU_STATIC_ASSERT(ACL_MEM_MALLOC_HUGE_FIRST == 0 && ACL_MEM_MALLOC_HUGE_ONLY == 1 &&
                      ACL_MEM_MALLOC_NORMAL_ONLY == 2 && ACL_MEM_MALLOC_HUGE_FIRST_P2P == 3 &&
                      ACL_MEM_MALLOC_HUGE_ONLY_P2P == 4 && ACL_MEM_MALLOC_NORMAL_ONLY_P2P == 5 &&
                      ACL_MEM_MALLOC_HUGE1G_ONLY == 6 && ACL_MEM_MALLOC_HUGE1G_ONLY_P2P == 7,
                  "malloc policy");
EMU_STATIC_ASSERT(ACL_MEM_TYPE_LOW_BAND_WIDTH == 0x0100 && ACL_MEM_TYPE_HIGH_BAND_WIDTH == 0x1000 &&
                      ACL_MEM_ACCESS_USER_SPACE_READONLY == 0x100000,
                  "malloc flags");
EMU_STATIC_ASSERT(ACL_MEMCPY_HOST_TO_HOST == 0 && ACL_MEMCPY_HOST_TO_DEVICE == 1 &&
                      ACL_MEMCPY_DEVICE_TO_HOST == 2 && ACL_MEMCPY_DEVICE_TO_DEVICE == 3 &&
                      ACL_MEMCPY_DEFAULT == 4,
                  "memcpy kind");
EMU_STATIC_ASSERT(sizeof(aclError) == sizeof(int), "aclError");
EMU_STATIC_ASSERT(sizeof(aclrtStream) == sizeof(void *), "aclrtStream");

int main(void)
{
    aclError (*f_init)(const char *) = aclInit;
    aclError (*f_fini)(void) = aclFinalize;
    aclError (*f_set)(int32_t) = aclrtSetDevice;
    aclError (*f_reset)(int32_t) = aclrtResetDevice;
    aclError (*f_resetf)(int32_t) = aclrtResetDeviceForce;
    aclError (*f_get)(int32_t *) = aclrtGetDevice;
    aclError (*f_sync)(void) = aclrtSynchronizeDevice;
    aclError (*f_cs)(aclrtStream *) = aclrtCreateStream;
    aclError (*f_ds)(aclrtStream) = aclrtDestroyStream;
    aclError (*f_dsf)(aclrtStream) = aclrtDestroyStreamForce;
    aclError (*f_tgid)(int32_t *) = aclrtDeviceGetBareTgid;
    aclError (*f_m)(void **, size_t, aclrtMemMallocPolicy) = aclrtMalloc;
    aclError (*f_ma)(void **, size_t, aclrtMemMallocPolicy) = aclrtMallocAlign32;
    aclError (*f_mc)(void **, size_t, aclrtMemMallocPolicy) = aclrtMallocCached;
    aclError (*f_free)(void *) = aclrtFree;
    aclError (*f_cpy)(void *, size_t, const void *, size_t, aclrtMemcpyKind) = aclrtMemcpy;
    aclError (*f_set_mem)(void *, size_t, int32_t, size_t) = aclrtMemset;
    aclError (*f_export)(void *, size_t, char *, size_t, uint64_t) = aclrtIpcMemGetExportKey;
    aclError (*f_setpid)(const char *, int32_t *, size_t) = aclrtIpcMemSetImportPid;
    aclError (*f_inter)(const char *, aclrtServerPid *, size_t) = aclrtIpcMemImportPidInterServer;
    aclError (*f_import)(void **, const char *, uint64_t) = aclrtIpcMemImportByKey;
    aclError (*f_attr)(const char *, aclrtIpcMemAttrType, uint64_t) = aclrtIpcMemSetAttr;
    aclError (*f_close)(const char *) = aclrtIpcMemClose;

    int32_t pids[1] = {1};
    struct aclrtServerPid tagged = {0u, pids, 1u};
    aclrtServerPid sp = tagged;
    aclrtIpcMemAttrType t = ACL_RT_IPC_MEM_ATTR_ACCESS_LINK;
    aclrtMemMallocPolicy pol = ACL_MEM_MALLOC_HUGE_FIRST;
    aclrtMemcpyKind kind = ACL_MEMCPY_DEVICE_TO_DEVICE;
    aclError codes = ACL_SUCCESS + ACL_ERROR_INVALID_PARAM + ACL_ERROR_API_NOT_SUPPORT +
                     ACL_ERROR_RT_PARAM_INVALID + ACL_ERROR_RT_CONTEXT_NULL + ACL_ERROR_RT_INVALID_HANDLE +
                     ACL_ERROR_RT_FEATURE_NOT_SUPPORT + ACL_ERROR_RT_MEMORY_ALLOCATION +
                     ACL_ERROR_RT_NO_PERMISSION + ACL_ERROR_RT_DRV_INTERNAL_ERROR;
    uint32_t sdid = sp.sdid;
    int32_t *pid = sp.pid;
    size_t num = sp.num;

    return (f_init != 0) + (f_fini != 0) + (f_set != 0) + (f_reset != 0) + (f_resetf != 0) + (f_get != 0) +
           (f_sync != 0) + (f_cs != 0) + (f_ds != 0) + (f_dsf != 0) + (f_tgid != 0) + (f_m != 0) +
           (f_ma != 0) + (f_mc != 0) + (f_free != 0) + (f_cpy != 0) + (f_set_mem != 0) + (f_export != 0) +
           (f_setpid != 0) + (f_inter != 0) + (f_import != 0) + (f_attr != 0) + (f_close != 0) +
           (int)t + (int)pol + (int)kind + (codes != 1749926) + (int)sdid + (pid != 0) + (int)num;
}
