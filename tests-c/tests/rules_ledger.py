"""The four ledger rules, each broken by real processes sharing one ledger directory, in
audit, enforce and abort mode: import.not-whitelisted (a whitelist without the importer,
or no whitelist at all), import.started-after-whitelist (the pid-reuse case, arranged with
a bare tgid the runtime reports for two processes, one started before the whitelist and
one after), import.source-gone (exporter closed, freed, exited) and
close.exporter-before-importers. Also export.imported for an address inside an import,
which needs the import's size from the ledger."""
from ruleslib import *

check_actor_group([
    "import.not-whitelisted", "import.not-whitelisted~nolist",
    "import.started-after-whitelist",
    "import.source-gone", "import.source-gone~freed", "import.source-gone~exited",
    "close.exporter-before-importers",
    "export.imported~inside",
])
done("rules.ledger")
