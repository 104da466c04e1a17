//! The edge with C: the vendor's entry points the shim intercepts, the library's own C
//! API, the vendor's C types, and every read of the caller's memory. Thin: each entry point
//! converts its arguments at the boundary and hands over to `runtime::entry`; nothing here
//! decides what is a violation. The header `include/acl_ipc_guard.h` is generated from
//! these files by cbindgen (`cbindgen.toml`).

pub mod api;
pub mod intercepted;
pub(crate) mod raw;
pub mod vendor;

/// The library's own C functions (beside the intercepted ones, which are `Func::ALL`).
#[cfg(test)]
const OWN_API: [&str; 3] = [
    "aclIpcGuardVersion",
    "aclIpcGuardGetStats",
    "aclIpcGuardFlush",
];

#[cfg(test)]
mod tests {
    use super::OWN_API;
    use crate::call::Func;

    fn intercepted() -> Vec<&'static str> {
        Func::ALL.iter().map(|f| f.name()).collect()
    }

    /// The version script exports exactly the intercepted functions and the own API.
    #[test]
    fn exports_map_is_the_function_table() {
        let map = include_str!("../../exports.map");
        let global =
            &map[map.find("global:").expect("global:")..map.find("local:").expect("local:")];
        let names: Vec<&str> = global
            .lines()
            .skip(1)
            .map(|l| l.trim().trim_end_matches(';'))
            .filter(|l| !l.is_empty())
            .collect();
        let mut want = intercepted();
        want.extend(OWN_API);
        assert_eq!(names, want);
    }

    /// The generated header (from the entry points in this directory) declares exactly the
    /// own API and the intercepted functions: an entry point per `Func`, none more.
    #[test]
    fn header_declares_an_entry_point_per_function() {
        let header = include_str!("../../include/acl_ipc_guard.h");
        let names: Vec<&str> = header
            .lines()
            .filter(|l| !l.starts_with([' ', '#', '/', '*', '}', '\t']) && l.contains('('))
            .filter_map(|l| {
                let head = &l[..l.find('(')?];
                head.rsplit([' ', '*']).next()
            })
            .filter(|n| n.starts_with("acl"))
            .collect();
        let mut want = OWN_API.to_vec();
        want.extend(intercepted());
        assert_eq!(names, want);
    }
}
