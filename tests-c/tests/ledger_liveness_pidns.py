"""ledger_liveness.py's first case with the exporter A as pid 1 of its own pid namespace
(its own /proc; the importer B on the host cannot see it there, nor compare thread ids
with it): A exports from a thread that exits (alive, told by the liveness lock), then from
its main thread (alive, told by the liveness word without a system call), then is
SIGKILLed (gone)."""
from ledger_liveness import *

require_namespaces("ledger.liveness.pidns")
thread_exit_then_kill("pid namespace: thread exit, then SIGKILL", ns=True)
done("ledger.liveness.pidns")
