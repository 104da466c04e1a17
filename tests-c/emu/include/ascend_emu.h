/*
 * Test hooks of the emulated Ascend runtime (not part of the vendor API).
 */
#ifndef ASCEND_EMU_H_
#define ASCEND_EMU_H_

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Number of times this process called the named emulator function (e.g.
 * "aclrtIpcMemClose"), failed calls included. A fork child starts from the
 * parent's counts at the time of the fork. Returns -1 for NULL or for a name
 * the emulator does not implement.
 */
__attribute__((visibility("default"))) int ascendEmuCallCount(const char *fnName);

#ifdef __cplusplus
}
#endif

#endif /* ASCEND_EMU_H_ */
