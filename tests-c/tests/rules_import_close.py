"""The import.* and close.* rules one process can break (the ledger rules are in
rules_ledger), in audit, enforce and abort mode."""
from ruleslib import *

check_named_group(("import.", "close."))
done("rules.import_close")
