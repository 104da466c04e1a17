"""Fuzzing the intercepted functions through the real preload (programs: fuzz/aig_fuzz.c).

Each round runs 4 fuzz processes at once (4 seeds, random calls with NULL, valid,
misaligned, freed, imported and host pointers, keys and arrays that end at a PROT_NONE
page, random lengths, flags, pids, fork children that import their parent's keys), all
sharing one ledger: once without the shim, once under it in `audit`, once in `enforce`.

- audit: every process's output (every return code, every out-value relation, the bytes
  read through imported memory) is the same as without the shim; its log is JSON lines,
  `start` first with seq 1, `seq` without a gap, `summary` last, one `call` record per call
  made, in order, with the same `fn` and `ret`, all forwarded; nothing dropped, no `error`;
- enforce: no crash and no hang; each call is either forwarded (the runtime saw it: its
  record says so) or blocked (it returned 100000 and the runtime never saw it), and the
  summary's `blocked` counts the blocked ones;
- no raw key the runtime handed out appears in any log, on stderr, or in the ledger file
  (which holds their 64-bit identities, computed here independently of the shim).

The first round uses fixed seeds; later ones (for AIG_FUZZ_SECONDS, default 6) new seeds,
printed, so a failure can be replayed: AIG_FUZZ_SEED=N runs seeds N..N+3 first.
scripts/fuzz.sh runs this longer."""
import atexit
import os
import re
import subprocess
import time
from harness import *

FUZZ = prog("aig_fuzz")
SECONDS = float(os.environ.get("AIG_FUZZ_SECONDS", "6"))
OPS = int(os.environ.get("AIG_FUZZ_OPS", "400"))
PROCS = 4
INVALID_PARAM = 100000

M64 = (1 << 64) - 1
# src/key.rs `id_of`: the ledger indexes keys by this hash of the 65-byte key buffer.
LANES = [0x243F6A8885A308D3, 0x13198A2E03707345, 0xA4093822299F31D1, 0x082EFA98EC4E6C89,
         0x452821E638D01377, 0xBE5466CF34E90C6D, 0xC0AC29B7C97C50DD, 0x3F84D5B5B5470917]


def fmix(x):
    x ^= x >> 33
    x = (x * 0xFF51AFD7ED558CCD) & M64
    x ^= x >> 33
    x = (x * 0xC4CEB9FE1A85EC53) & M64
    return x ^ (x >> 33)


def key_identity(key):
    """The shim's identity of a key (bytes up to its NUL), as the ledger file stores it."""
    buf = key[:64].ljust(64, b"\0")
    acc = 0
    for i, lane in enumerate(LANES):
        acc = (acc + fmix(int.from_bytes(buf[8 * i:8 * i + 8], "little") ^ lane)) & M64
    return fmix(acc ^ 0x9E3779B97F4A7C15).to_bytes(8, "little")


def parse(out):
    """[(prefix, fn, ret, calls, text)] of the intercepted calls, in order."""
    rows = []
    for text in out.splitlines():
        parts = text.split()
        if len(parts) < 4 or not parts[1].startswith("acl"):
            continue
        prefix = parts[0].split(".")[0]
        rows.append((prefix, parts[1], int(parts[2]), int(parts[3][len("calls="):]), text))
    return rows


def pids_of(err):
    """{prefix: pid} from the driver's stderr lines."""
    out = {}
    for l in err.splitlines():
        if l.startswith("aig_fuzz: pid="):
            pid, prefix = l[len("aig_fuzz: pid="):].split(" prefix=")
            out[prefix] = int(pid)
    return out


# LeakSanitizer's note in a fork child of a threaded process (-DAIG_SANITIZE=ON builds).
LSAN_FORK_NOTE = re.compile(r"^==\d+==Running thread \d+ was not suspended\. False leaks are possible\.$")


def foreign_stderr(err):
    return [l for l in err.splitlines()
            if l.strip() and not l.startswith("aig_fuzz: ") and not LSAN_FORK_NOTE.match(l)]


def run_batch(seeds, env, preload, what):
    env = dict(env)
    if preload:
        env["LD_PRELOAD"] = SHIM
    procs = []
    for s in seeds:
        e = dict(env)
        if preload:
            e["ACL_IPC_GUARD_LOG"] = env["ACL_IPC_GUARD_LOG"].replace("SEED", str(s))
        procs.append((s, subprocess.Popen([FUZZ, str(s), str(OPS), env["KEYS"]], env=e, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE)))
    results = {}
    for s, p in procs:
        try:
            out, err = p.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            for _, q in procs:
                q.kill()
            fail(f"{what}: seed {s} did not finish within 120 s (a hang)")
        out, err = out.decode(errors="replace"), err.decode(errors="replace")
        if p.returncode != 0:
            fail(f"{what}: seed {s} exited {p.returncode} (replay: AIG_FUZZ_SEED={s})\nstderr:\n{err[-3000:]}")
        check(out.rstrip().endswith("end"), f"{what}: seed {s} ran to its end")
        results[s] = (out, err)
    return results


def check_log(path, rows, what, mode):
    """The log of one process against the calls it made (rows)."""
    rs = read_log(path)
    check(rs and rs[0]["event"] == "start" and rs[0]["seq"] == 1, f"{what}: start record first, seq 1")
    check_seq(rs, what)
    eq(rs[-1]["event"], "summary", f"{what}: summary last")
    s = rs[-1]
    eq(s["dropped"], 0, f"{what}: nothing dropped")
    eq(events(rs, "error"), [], f"{what}: no error record")
    cs = calls(rs)
    eq(len(cs), len(rows), f"{what}: one call record per call made")
    eq(s["calls"], len(rows), f"{what}: summary calls")
    blocked = 0
    for r, (_, fn, ret, n, text) in zip(cs, rows):
        eq((r["fn"], r["ret"]), (fn, ret), f"{what}: the record of `{text}`")
        if mode == "audit":
            check(r["forwarded"] is True and n == 1, f"{what}: `{text}` forwarded once: {r}")
        else:
            eq(r["forwarded"], n == 1, f"{what}: `{text}`: forwarded exactly when the runtime saw it")
            check(n in (0, 1), f"{what}: `{text}` reached the runtime at most once")
            if n == 0:
                eq(ret, INVALID_PARAM, f"{what}: `{text}` blocked with 100000")
                blocked += 1
    if mode == "enforce":
        eq(s["blocked"], blocked, f"{what}: summary blocked = calls blocked")
    return rs


def check_mode(seeds, res, base, work, mode):
    all_text = []
    for s in seeds:
        out, err = res[s]
        what = f"{mode} seed {s}"
        eq(foreign_stderr(err), [], f"{what}: nothing on stderr but the driver's own lines")
        if mode == "audit":
            bout = base[s][0]
            if out != bout:
                a, b = bout.splitlines(), out.splitlines()
                first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
                fail(f"{what}: the program saw something else under the shim (replay: AIG_FUZZ_SEED={s}); "
                     f"first difference at line {first + 1}:\n  without: {a[first:first + 1]}\n  with:    "
                     f"{b[first:first + 1]}")
            check(True, f"{what}: same output as without the shim")
        rows = parse(out)
        pids = pids_of(err)
        eq(sorted(pids), sorted({r[0] for r in rows} | {"p"}), f"{what}: every process said its pid")
        for prefix, pid in pids.items():
            path = work.file(f"log.{mode}.{s}.{pid}.json")
            check(os.path.exists(path), f"{what}: {prefix} (pid {pid}) wrote its log")
            rs = check_log(path, [r for r in rows if r[0] == prefix], f"{what} {prefix}", mode)
            if prefix != "p":
                # A fork child names its parent when the parent had started the shim (made
                # an intercepted call) before the fork.
                k = prefix[1:]
                lines = out.splitlines()
                at = next(i for i, l in enumerate(lines) if l.startswith("p.") and l.endswith(f" child={k}"))
                before = [l for l in lines[:at] if l.startswith("p.") and l.split()[1].startswith("acl")]
                eq(rs[0].get("parent"), pids["p"] if before else None, f"{what} {prefix}: start names the parent")
            with open(path) as f:
                all_text.append(f.read())
        all_text.append(err)
    return all_text


def run_round(seeds, n):
    work = Workdir()
    atexit.register(work.cleanup)
    keys = work.file("keys")
    base_env_ = base_env(work, {"KEYS": keys})
    base = run_batch(seeds, base_env_, False, f"round {n} without the shim")
    texts = []
    for mode in ("audit", "enforce"):
        emu = work.file(f"emu.{mode}")
        os.mkdir(emu, 0o700)
        env = base_env(work, {"KEYS": keys, "ASCEND_EMU_DIR": emu, "ACL_IPC_GUARD_MODE": mode,
                              "ACL_IPC_GUARD_CALLS": "all",
                              "ACL_IPC_GUARD_BACKTRACE": "1" if mode == "enforce" else "0",
                              "ACL_IPC_GUARD_LOG": work.file(f"log.{mode}.SEED.%p.json")})
        res = run_batch(seeds, env, True, f"round {n} {mode}")
        texts += check_mode(seeds, res, base, work, mode)
    with open(keys) as f:
        raw = {l.strip() for l in f if l.strip()}
    check(raw, f"round {n}: the runtime handed out keys")
    blob = "\n".join(texts)
    leaked = [k for k in raw if k in blob]
    eq(leaked, [], f"round {n}: raw keys in the logs or on stderr")
    # The ledger file (kept: the fuzz processes leave keys open) holds fingerprints only.
    ledger_file = os.path.join(work.ledger, "ledger.v5")
    check(os.path.exists(ledger_file), f"round {n}: the ledger file is there")
    with open(ledger_file, "rb") as f:
        data = f.read()
    eq([k for k in raw if k.encode() in data], [], f"round {n}: raw keys in the ledger file")
    ids = [key_identity(k.encode()) for k in raw]
    check(any(i in data for i in ids), f"round {n}: the ledger file holds the keys' identities")
    work.cleanup()
    return len(raw)


first = int(os.environ.get("AIG_FUZZ_SEED", "0")) or 1
t0 = time.monotonic()
rounds, keys_seen, seed = 0, 0, first
while True:
    seeds = list(range(seed, seed + PROCS))
    keys_seen += run_round(seeds, rounds)
    rounds += 1
    if time.monotonic() - t0 >= SECONDS:
        break
    if rounds == 1 and "AIG_FUZZ_SEED" not in os.environ:
        seed = int(time.time() * 1000) % 1_000_000_000 * PROCS
    else:
        seed += PROCS
    print(f"round {rounds}: seeds {seed}..{seed + PROCS - 1}")
    sys.stdout.flush()
print(f"note: {rounds} rounds x {PROCS} processes x {OPS} calls (+ fork children) in each of 3 runs, "
      f"{keys_seen} keys handed out, {time.monotonic() - t0:.1f} s")
done("fuzz.calls")
