"""ACL_IPC_GUARD_LOG=syslog:SOCKET (and plain `syslog`, /dev/log) against a real rsyslogd,
started here with its own configuration and socket and stopped at the end: every record a
process writes arrives, in order, as one RFC 5424 message whose MSG is the JSON record the
file sink writes, with the severity the README's table gives it. With no daemon on the
socket the program runs unchanged and one line on stderr says why its records are lost."""
import atexit
import json
import os
import re
import signal
import shutil
import subprocess
import time
from harness import *

NAME = "audit.syslog"


def find_rsyslogd():
    for cand in (shutil.which("rsyslogd"), "/usr/sbin/rsyslogd"):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


RSYSLOGD = find_rsyslogd()
if RSYSLOGD is None:
    if os.environ.get("CI") == "true":
        fail(f"{NAME}: rsyslogd is missing and CI=true (scripts/setup.sh installs Debian's rsyslog)")
    print(f"{NAME}: SKIPPED: rsyslogd is missing (apt-get install rsyslog)")
    sys.stdout.flush()
    sys.exit(SKIP)

# What rsyslog parsed out of each message, as one JSON object per line: the raw datagram,
# and the RFC 5424 fields as rsyslog's parser understood them.
CONF = """\
global(workDirectory="{dir}" maxMessageSize="256k")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{sock}" UseSpecialParser="off" ParseHostname="on"
      UseSysTimeStamp="off" IgnoreTimestamp="off" RateLimit.Interval="0")
template(name="fields" type="list" option.jsonf="on") {{
  property(outname="raw" name="rawmsg" format="jsonf")
  property(outname="pri" name="pri" format="jsonf")
  property(outname="facility" name="syslogfacility" format="jsonf")
  property(outname="severity" name="syslogseverity" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="app" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
}}
if $app-name == "acl-ipc-guard" then {{
  action(type="omfile" file="{out}" template="fields")
}}
"""

DAEMONS = []


class Rsyslogd:
    """rsyslogd in the foreground with its own configuration, socket and pid file."""

    def __init__(self, work, name="rsyslog"):
        self.dir = work.file(name)
        os.mkdir(self.dir, 0o700)
        self.sock = os.path.join(self.dir, "log.sock")
        self.out = os.path.join(self.dir, "out.jsonl")
        conf = os.path.join(self.dir, "rsyslog.conf")
        with open(conf, "w") as f:
            f.write(CONF.format(dir=self.dir, sock=self.sock, out=self.out))
        self.log = open(os.path.join(self.dir, "daemon.txt"), "wb")
        self.p = subprocess.Popen([RSYSLOGD, "-n", "-f", conf, "-i", os.path.join(self.dir, "pid")],
                                  stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        DAEMONS.append(self)
        deadline = time.monotonic() + 60
        while not os.path.exists(self.sock):
            if self.p.poll() is not None:
                fail(f"rsyslogd exited {self.p.returncode} before making {self.sock}: {self.daemon_said()}")
            if time.monotonic() > deadline:
                fail(f"rsyslogd made no socket within 60 s: {self.daemon_said()}")
            time.sleep(0.02)

    def daemon_said(self):
        with open(os.path.join(self.dir, "daemon.txt"), errors="replace") as f:
            return f.read()

    def messages(self):
        if not os.path.exists(self.out):
            return []
        with open(self.out, encoding="utf-8") as f:
            text = f.read()
        # A line still being written is left for the next look.
        return [json.loads(l) for l in text.split("\n")[:-1] if l]

    def wait_for(self, n, timeout=60):
        """The messages once n have arrived (or all there are after timeout)."""
        deadline = time.monotonic() + timeout
        while len(self.messages()) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode


def stop_all():
    for d in DAEMONS:
        d.stop()


atexit.register(stop_all)

HOST = os.uname().nodename
# The README's table: RFC 5424 severity by record.
SEVERITY = {"start": 6, "call": 7, "summary": 6, "error": 3}


def expected_severity(r):
    if r["event"] == "violation":
        if r["action"] == "aborted":
            return 2
        return {"error": 3, "warning": 4}[r["severity"]]
    return SEVERITY[r["event"]]


def volatile_free(v):
    """A record without what differs between two runs of the same program."""
    if isinstance(v, dict):
        return {k: volatile_free(x) for k, x in v.items()
                if k not in ("ts", "pid", "tid", "dur_ns", "bare_tgid", "parent", "backtrace")}
    if isinstance(v, list):
        return [volatile_free(x) for x in v]
    if isinstance(v, str) and v.startswith(("0x", "fp:")):
        return v[:3]
    return v


def records_of(msgs, what):
    """{pid: [records]} from rsyslog's messages, each checked against its own header."""
    by_pid = {}
    for m in msgs:
        raw = m["raw"]
        r = json.loads(m["msg"])
        head = f"<{m['pri']}>1 {r['ts']} {HOST} acl-ipc-guard {r['pid']} {r['event']} - "
        eq(raw, head + m["msg"], f"{what}: the datagram is the RFC 5424 header and the record")
        eq((m["app"], m["procid"], m["msgid"], m["host"], m["sd"]),
           ("acl-ipc-guard", str(r["pid"]), r["event"], HOST, "-"), f"{what}: header fields as rsyslog parsed them")
        eq((int(m["facility"]), int(m["severity"])), (1, expected_severity(r)),
           f"{what}: facility user, severity of {r['event']} {r.get('rule', '')}")
        eq(int(m["pri"]), 8 + expected_severity(r), f"{what}: PRI")
        by_pid.setdefault(r["pid"], []).append(r)
    return by_pid


def check_complete(recs, what):
    eq(recs[0]["event"], "start", f"{what}: start first")
    eq(recs[-1]["event"], "summary", f"{what}: summary last")
    eq([r["seq"] for r in recs], list(range(1, len(recs) + 1)), f"{what}: seq 1..N, in order, no gap")
    eq(recs[-1]["dropped"], 0, f"{what}: nothing dropped")


def file_run(argv, extra, pattern="f.%p.json"):
    """The same program logged to JSON files: {pid: records} in start order, stdout, status."""
    work = Workdir()
    atexit.register(work.cleanup)
    env = base_env(work, dict(extra, ACL_IPC_GUARD_LOG=work.file(pattern), ACL_IPC_GUARD_LEDGER="off"))
    p = run(argv, env)
    logs = read_logs(work.file(pattern.replace("%p", "*")))
    return sorted(logs.values(), key=lambda rs: rs[0]["ts"]), p


def syslog_run(daemon, argv, extra, work):
    env = base_env(work, dict(extra, ACL_IPC_GUARD_LOG="syslog:" + daemon.sock, ACL_IPC_GUARD_LEDGER="off"))
    return run(argv, env)


def compare(argv, extra, what, rc=0):
    """Runs argv once to files and once to the daemon; the daemon's records are the files'."""
    want, fp = file_run(argv, extra)
    eq(fp.returncode, rc, f"{what}: status with a file log")
    work = Workdir()
    atexit.register(work.cleanup)
    daemon = Rsyslogd(work)
    p = syslog_run(daemon, argv, extra, work)
    eq(p.returncode, rc, f"{what}: status with syslog")
    eq(re.sub(r"\d+", "N", p.stdout_text), re.sub(r"\d+", "N", fp.stdout_text),
       f"{what}: program output as with a file log (pids aside)")
    eq([l for l in p.stderr_text.splitlines() if "acl-ipc-guard" in l], [], f"{what}: nothing said on stderr")
    total = sum(len(rs) for rs in want)
    msgs = daemon.wait_for(total)
    eq(daemon.stop(), 0, f"{what}: rsyslogd stopped cleanly")
    got = records_of(daemon.messages(), what)
    eq(len(got), len(want), f"{what}: one stream per process")
    got = sorted(got.values(), key=lambda rs: rs[0]["ts"])
    for n, (g, w) in enumerate(zip(got, want)):
        label = f"{what}: process {n}"
        check_complete(g, label)
        eq(len(g), len(w), f"{label}: as many records as in its file")
        for a, b in zip(g, w):
            eq(volatile_free(a), volatile_free(b), f"{label}: record {a['seq']} as the file sink writes it")
    check(len(msgs) == total, f"{what}: {len(msgs)} messages, {total} records")
    work.cleanup()
    return got


# A program with calls and an `error` violation (close.unknown), then the same with that
# rule lowered to a warning; a fork child and an exec'd program on the same socket.
got = compare([prog("audit_work"), "mix"], {"ACL_IPC_GUARD_CALLS": "all"}, "mix")
check(any(r["event"] == "violation" and r["severity"] == "error" for r in got[0]), "mix: an error violation")
got = compare([prog("audit_work"), "mix"], {"ACL_IPC_GUARD_RULES": "close.unknown=warning"}, "mix, warning")
check(any(r["event"] == "violation" and r["severity"] == "warning" for r in got[0]), "mix: a warning violation")
got = compare([prog("audit_work"), "fork"], {}, "fork and exec")
eq(len(got), 3, "fork and exec: the parent, the fork child and the exec'd program")
eq(got[1][0].get("parent"), got[0][0]["pid"], "fork and exec: the child's start names its parent")
# The exporter and its importer (a second process) in whitelist mode.
compare([prog("pair"), "whitelist"], {}, "pair")

# Abort mode: the violation that ends the process is critical, and everything before it,
# the summary included, arrived.
work = Workdir()
atexit.register(work.cleanup)
daemon = Rsyslogd(work)
p = syslog_run(daemon, [prog("audit_work"), "abort", "3"], {"ACL_IPC_GUARD_MODE": "abort"}, work)
eq(p.returncode, -signal.SIGABRT, "abort: the process aborted")
msgs = daemon.wait_for(1)
time.sleep(0.5)
daemon.stop()
got = records_of(daemon.messages(), "abort")
eq(len(got), 1, "abort: one process")
recs = next(iter(got.values()))
check_complete(recs, "abort")
aborted = [r for r in recs if r["event"] == "violation" and r["action"] == "aborted"]
eq(len(aborted), 1, "abort: the aborting violation arrived (as crit, checked above)")
work.cleanup()

# No daemon on the socket: the program is unharmed, says once why, and nothing hangs.
work = Workdir()
atexit.register(work.cleanup)
baseline = run([prog("audit_work"), "mix"], base_env(work), preload=False, check_rc=0).stdout_text
nowhere = work.file("no-daemon.sock")
for how in ("missing", "stale"):
    if how == "stale":
        # A socket file nobody listens on (a daemon that died): refused, not absent.
        import socket as pysocket
        s = pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_DGRAM)
        s.bind(nowhere)
        s.close()
    env = base_env(work, {"ACL_IPC_GUARD_LOG": "syslog:" + nowhere, "ACL_IPC_GUARD_LEDGER": "off"})
    p = run([prog("audit_work"), "mix"], env, timeout=60)
    eq((p.returncode, p.stdout_text), (0, baseline), f"no daemon ({how}): program unchanged")
    said = [l for l in p.stderr_text.splitlines() if l.strip()]
    eq(len(said), 1, f"no daemon ({how}): one line on stderr: {said}")
    check(nowhere in said[0] and "acl-ipc-guard" in said[0], f"no daemon ({how}): the line names the socket: {said}")
    # A fork child and an exec'd program: still unharmed, each says it at most once.
    p = run([prog("audit_work"), "fork"], env, timeout=60)
    eq(p.returncode, 0, f"no daemon ({how}): fork and exec unharmed")
    eq(len([l for l in p.stderr_text.splitlines() if nowhere in l]), 2,
       f"no daemon ({how}): said by the parent and by the exec'd program, not by the fork child: {p.stderr_text}")
work.cleanup()

# Plain `syslog` is /dev/log: tried in a private mount namespace whose /dev is a fresh
# tmpfs with /dev/log pointing to the test's daemon (and /dev/null, /dev/shm from the host).
why = namespaces_usable()
if why is None:
    work = Workdir()
    atexit.register(work.cleanup)
    daemon = Rsyslogd(work)
    want, fp = file_run([prog("audit_work"), "mix"], {})
    hostdev = work.file("hostdev")
    os.mkdir(hostdev)
    env = base_env(work, {"ACL_IPC_GUARD_LEDGER": "off"})
    program_env = {"ACL_IPC_GUARD_LOG": "syslog", "LD_PRELOAD": SHIM}
    script = ('mount --rbind /dev "$0" && mount -t tmpfs -o mode=755 aig-dev /dev && '
              'touch /dev/null && mount --bind "$0/null" /dev/null && '
              'mkdir /dev/shm && mount --bind "$0/shm" /dev/shm && ln -s "$1" /dev/log && '
              'shift && exec "$@"')
    argv = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, hostdev, daemon.sock,
            "env", *[f"{k}={v}" for k, v in program_env.items()], prog("audit_work"), "mix"]
    p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    eq(p.returncode, 0, f"plain syslog: status: {p.stderr.decode(errors='replace')}")
    eq(p.stdout.decode(), fp.stdout_text, "plain syslog: program output")
    eq(p.stderr.decode().strip(), "", "plain syslog: nothing said on stderr")
    daemon.wait_for(len(want[0]))
    daemon.stop()
    got = records_of(daemon.messages(), "plain syslog")
    eq(len(got), 1, "plain syslog: one process")
    recs = next(iter(got.values()))
    check_complete(recs, "plain syslog")
    eq([volatile_free(r) for r in recs], [volatile_free(r) for r in want[0]], "plain syslog: the file's records")
    check(not os.path.exists("/dev/log") or os.path.realpath("/dev/log") != daemon.sock,
          "plain syslog: the host's /dev is untouched")
    work.cleanup()
elif os.environ.get("CI") == "true":
    fail(f"{NAME}: plain syslog (/dev/log) needs a private mount namespace, and CI=true: {why}")
else:
    print(f"{NAME}: plain `syslog` (/dev/log) not tested here: no private mount namespace ({why})")

done(NAME)
