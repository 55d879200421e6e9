//! How the variables of every function instance of an ELF file are
//! located at their probe addresses, by kind: what `$var` can read.
//!
//!     cargo bench -p stapxx-rs --bench var_locations -- "$PWD/FILE"...
//!
//! "computed" rows are the locations that are not a register, a register
//! plus an offset or a constant (`DW_OP_mul`, shifts, memory reads, two
//! registers), and values that are link-time addresses (which move with
//! the load bias); "not read" rows say why a variable cannot be read.

use std::collections::BTreeMap;
use std::path::Path;

use stapxx::debuginfo::locexpr::LocExpr;
use stapxx::debuginfo::params::ParamLocation;
use stapxx::debuginfo::Module;

fn kind(l: &ParamLocation) -> String {
    match l {
        ParamLocation::Register(_) => "register".into(),
        ParamLocation::Memory { .. } => "memory at register + offset".into(),
        ParamLocation::Computed { .. } => "value register + offset".into(),
        ParamLocation::Address(_) => "memory at a link-time address".into(),
        ParamLocation::Constant(_) => "constant".into(),
        ParamLocation::MemoryAt(_) => "computed: memory at an expression".into(),
        ParamLocation::ValueOf(LocExpr::Addr(_)) => "computed: a link-time address".into(),
        ParamLocation::ValueOf(_) => "computed: value of an expression".into(),
        ParamLocation::OptimizedOut => "not read: no location here".into(),
        ParamLocation::Unsupported(why) => format!("not read: {why}"),
    }
}

fn main() {
    let files: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if files.is_empty() {
        eprintln!("usage: cargo bench -p stapxx-rs --bench var_locations -- FILE...");
        return;
    }
    for f in files {
        // (Relative paths are from the package directory, where cargo
        // runs benches.)
        let inst = match Module::open(Path::new(&f)).and_then(|m| m.function_instances("*")) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("{f}: {e}");
                continue;
            }
        };
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for i in &inst {
            for v in i.params.iter().chain(&i.locals) {
                *counts.entry(kind(&v.location)).or_default() += 1;
            }
        }
        let total: usize = counts.values().sum();
        println!("{f}: {} function instances, {total} variables", inst.len());
        for (k, n) in counts {
            println!("  {n:7}  {k}");
        }
    }
}
