"""Every setpid.* rule (aclrtIpcMemSetImportPid), in audit, enforce and abort mode."""
from ruleslib import *

check_named_group(("setpid.",))
done("rules.setpid")
