//! The audit module (audit/, which depends only on libc) keeps its own list of the
//! intercepted names: it must be the shim's list, in the shim's order.

use acl_ipc_guard::call::Func;

#[test]
fn audit_module_redirects_exactly_the_intercepted_functions() {
    let src = include_str!("../audit/src/lib.rs");
    let decl = src.find("const NAMES").expect("NAMES in audit/src/lib.rs");
    let start = decl + src[decl..].find("= [").expect("NAMES' value");
    let block = &src[start..start + src[start..].find("];").expect("end of NAMES")];
    let names: Vec<&str> = block
        .split("b\"")
        .skip(1)
        .map(|s| &s[..s.find('"').expect("closing quote")])
        .collect();
    let shim: Vec<&str> = Func::ALL.iter().map(|f| f.name()).collect();
    assert_eq!(names, shim);
}
