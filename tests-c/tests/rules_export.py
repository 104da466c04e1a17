"""Every export.* rule that one process can break (export.imported needs two: see
rules_crossproc), each under the real preload: reported in audit with the program seeing
what it sees without the shim, blocked in enforce without reaching the runtime (warnings
forwarded), SIGABRT after a complete log in abort."""
from ruleslib import *

check_named_group(("export.",))
done("rules.export")
