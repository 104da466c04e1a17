"""A correct exporter/importer pair in Python through ctypes: ctypes.CDLL("libascendcl.so")
is dlopen, and each function is dlsym(handle, name), so a preload alone never sees these
calls.

    python3 ctypes_pair.py [--misuse]   the exporter; starts the importer (this script again)

The exporter allocates, writes a text, exports with flags 0, whitelists the importer's bare
tgid, hands over the key and waits; the importer imports, reads the text, writes an answer
after it, closes. The exporter checks the answer, closes and frees. Each call prints
`ROLE FN RET`; any unexpected result exits non-zero.

--misuse: the exporter first asks for the key with a 64-byte buffer (export.key-len; the
runtime refuses it with 107000), then does it right; and each process prints `ROLE pid N`
and `ROLE maps PATH` for every library of acl-ipc-guard mapped into it (from
/proc/self/maps), so a test can tell which copy ran."""
import ctypes
import os
import subprocess
import sys
from ctypes import POINTER, byref, c_char_p, c_int, c_int32, c_size_t, c_uint64, c_void_p

SIZE = 8192
TEXT = b"written by the ctypes exporter"
ANSWER = b"and answered by the ctypes importer"
H2D, D2H = 1, 2
KEY_LEN_REFUSED = 107000
MISUSE = "--misuse" in sys.argv[1:]

rt = ctypes.CDLL("libascendcl.so")
for name, args in {
    "aclInit": [c_char_p],
    "aclrtSetDevice": [c_int32],
    "aclrtMemcpy": [c_void_p, c_size_t, c_void_p, c_size_t, c_int],
    "aclrtMalloc": [POINTER(c_void_p), c_size_t, c_int],
    "aclrtFree": [c_void_p],
    "aclrtIpcMemGetExportKey": [c_void_p, c_size_t, c_char_p, c_size_t, c_uint64],
    "aclrtIpcMemSetImportPid": [c_char_p, POINTER(c_int32), c_size_t],
    "aclrtIpcMemImportByKey": [POINTER(c_void_p), c_char_p, c_uint64],
    "aclrtIpcMemClose": [c_char_p],
    "aclrtDeviceGetBareTgid": [POINTER(c_int32)],
}.items():
    f = getattr(rt, name)
    f.argtypes, f.restype = args, c_int

role = "importer" if "importer" in sys.argv[1:] else "exporter"
# The importer's stdout is the pipe to the exporter: what it says for the test goes to stderr.
say_out = sys.stderr if role == "importer" else sys.stdout


def say(*words):
    print(role, *words, file=say_out, flush=True)


def call(name, *args, want=0):
    ret = getattr(rt, name)(*args)
    say(name, ret)
    if ret != want:
        sys.exit(f"{role}: {name} returned {ret}, expected {want}")


def our_libraries():
    """The files of acl-ipc-guard's libraries mapped into this process."""
    paths = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split(None, 5)
            if len(fields) == 6 and os.path.basename(fields[5].strip()).startswith("libacl_ipc_guard"):
                paths.add(fields[5].strip())
    return sorted(paths)


def setup():
    if MISUSE:
        for path in our_libraries():
            say("maps", path)
        say("pid", os.getpid())
    if rt.aclInit(None) != 0 or rt.aclrtSetDevice(0) != 0:
        sys.exit(f"{role}: no device")


def importer():
    # stdout is the pipe to the exporter; the call lines go to stderr.
    setup()
    tgid = c_int32(0)
    call("aclrtDeviceGetBareTgid", byref(tgid))
    print("tgid", tgid.value, flush=True)
    key = sys.stdin.readline().strip().encode()
    ptr = c_void_p()
    call("aclrtIpcMemImportByKey", byref(ptr), key, 0)
    host = ctypes.create_string_buffer(SIZE)
    if rt.aclrtMemcpy(host, SIZE, ptr, SIZE, D2H) != 0:
        sys.exit("importer: memcpy from the import failed")
    print("read", host.value.decode(), flush=True)
    if rt.aclrtMemcpy(ptr.value + 4096, 4096, ANSWER, len(ANSWER) + 1, H2D) != 0:
        sys.exit("importer: memcpy into the import failed")
    call("aclrtIpcMemClose", key)
    print("done", flush=True)


def exporter():
    setup()
    dev = c_void_p()
    call("aclrtMalloc", byref(dev), SIZE, 0)
    if rt.aclrtMemcpy(dev, SIZE, TEXT, len(TEXT) + 1, H2D) != 0:
        sys.exit("exporter: memcpy failed")
    key = ctypes.create_string_buffer(65)
    if MISUSE:
        call("aclrtIpcMemGetExportKey", dev, SIZE, key, 64, 0, want=KEY_LEN_REFUSED)
    call("aclrtIpcMemGetExportKey", dev, SIZE, key, 65, 0)
    child = subprocess.Popen([sys.executable, __file__, "importer"] + (["--misuse"] if MISUSE else []),
                             stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    print("importer pid", child.pid, flush=True)
    tgid = int(child.stdout.readline().split()[1])
    call("aclrtIpcMemSetImportPid", key.value, (c_int32 * 1)(tgid), 1)
    child.stdin.write(key.value.decode() + "\n")
    child.stdin.flush()
    for line in child.stdout:
        print("importer said", line.strip(), flush=True)
        if line.strip() == "done":
            break
    if child.wait() != 0:
        sys.exit(f"exporter: importer exited {child.returncode}")
    back = ctypes.create_string_buffer(64)
    if rt.aclrtMemcpy(back, 64, dev.value + 4096, 64, D2H) != 0:
        sys.exit("exporter: memcpy of the answer failed")
    print("exporter read", back.value.decode(), flush=True)
    if back.value != ANSWER:
        sys.exit("exporter: wrong answer")
    call("aclrtIpcMemClose", key.value)
    call("aclrtFree", dev)
    print("exporter pid", os.getpid(), flush=True)


importer() if role == "importer" else exporter()
