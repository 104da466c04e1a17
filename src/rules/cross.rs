//! The cross-process rules, judged from plain facts: which of them a call breaks. The shim
//! gathers the facts from the ledger while the job runs (`import`, `close`); the command's
//! `report` rebuilds them from the records afterwards and asks the same functions, so the
//! two cannot disagree on what the rules are. Each side words its own messages (the shim
//! names processes by pid, the report by its process tags).

use super::{ImportFacts, Rule};

/// What an import breaks, in order: `import.source-gone` (and then nothing else: the
/// memory is not there to be refused), else `import.not-whitelisted` or
/// `import.started-after-whitelist` in whitelist mode. `start_ns` is when the importing
/// process started (CLOCK_BOOTTIME ns; 0 when unknown, which never judges it late).
pub fn import_rules(facts: &ImportFacts, start_ns: u64) -> Option<Rule> {
    if facts.exporter_closed || facts.memory_freed || !facts.exporter_alive {
        return Some(Rule::ImportSourceGone);
    }
    if !facts.whitelist_mode {
        return None;
    }
    match facts.whitelisted_at_ns {
        None => Some(Rule::ImportNotWhitelisted),
        Some(at) if start_ns > at => Some(Rule::ImportStartedAfterWhitelist),
        Some(_) => None,
    }
}

/// What an exporter's close breaks: `close.exporter-before-importers` while `open` live
/// importing processes have not closed the key.
pub fn exporter_close_rule(open: usize) -> Option<Rule> {
    (open > 0).then_some(Rule::CloseExporterBeforeImporters)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> ImportFacts {
        ImportFacts {
            exporter_pid: 7,
            exporter_alive: true,
            whitelist_mode: true,
            exporter_closed: false,
            memory_freed: false,
            whitelisted_at_ns: Some(100),
            own_pid_listed: false,
        }
    }

    #[test]
    fn import_verdicts() {
        assert_eq!(import_rules(&facts(), 50), None);
        assert_eq!(import_rules(&facts(), 0), None, "unknown start: never late");
        assert_eq!(
            import_rules(&facts(), 150),
            Some(Rule::ImportStartedAfterWhitelist)
        );
        let none = ImportFacts {
            whitelisted_at_ns: None,
            ..facts()
        };
        assert_eq!(import_rules(&none, 0), Some(Rule::ImportNotWhitelisted));
        let open = ImportFacts {
            whitelist_mode: false,
            ..none
        };
        assert_eq!(import_rules(&open, 0), None);
        for gone in [
            ImportFacts {
                exporter_closed: true,
                ..none
            },
            ImportFacts {
                memory_freed: true,
                ..none
            },
            ImportFacts {
                exporter_alive: false,
                ..none
            },
        ] {
            assert_eq!(import_rules(&gone, 0), Some(Rule::ImportSourceGone));
        }
        assert_eq!(exporter_close_rule(0), None);
        assert_eq!(
            exporter_close_rule(2),
            Some(Rule::CloseExporterBeforeImporters)
        );
    }
}
