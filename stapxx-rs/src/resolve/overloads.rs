//! Functions overloaded by arity, as stap allows (`ctime()` and
//! `ctime(epochsecs)`, `task_utime()` and `task_utime(task)` in its
//! tapsets): each arity is its own function. The first definition of a
//! name (the script's, else the library's in precedence order) keeps the
//! name; the first of each other arity is renamed `NAME#ARITY`, and a call
//! with that many arguments goes to it ([`by_arity`]).
//!
//! Runtime overloading (`next` in a function to try the next definition
//! of the same arity) is not done: the first definition of each arity is
//! the only one, and its `next` is stap's "all functions exhausted".

use crate::ir::builtins::is_builtin;
use grammar::ast::{File, Function, Item};
use std::collections::HashMap;

/// The functions of the program, overloads renamed.
pub(super) struct Overloads<'a> {
    /// The first definition of each name.
    first: Vec<&'a Function>,
    /// Other arities' first definitions, renamed.
    renamed: Vec<Function>,
}

impl<'a> Overloads<'a> {
    /// `all`: the script's files (the first `script_count`), then the
    /// library's; a library function a builtin serves is left out.
    pub(super) fn new(all: &[&'a File], script_count: usize) -> Overloads<'a> {
        let mut first: Vec<&'a Function> = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut arities: HashMap<(&str, usize), ()> = HashMap::new();
        let mut renamed = Vec::new();
        for (i, f) in all.iter().enumerate() {
            for item in &f.items {
                let Item::Function(func) = item else {
                    continue;
                };
                if i >= script_count && is_builtin(&func.name) {
                    continue;
                }
                let arity = func.params.len();
                if arities.insert((func.name.as_str(), arity), ()).is_some() {
                    continue;
                }
                match seen.get(func.name.as_str()) {
                    None => {
                        seen.insert(func.name.as_str(), first.len());
                        first.push(func);
                    }
                    Some(_) => renamed.push(Function {
                        name: format!("{}#{arity}", func.name),
                        ..func.clone()
                    }),
                }
            }
        }
        Overloads { first, renamed }
    }

    /// Every function by the name calls use.
    pub(super) fn functions(&self) -> HashMap<&str, &Function> {
        self.first
            .iter()
            .copied()
            .chain(self.renamed.iter())
            .map(|f| (f.name.as_str(), f))
            .collect()
    }
}

/// The name a call of `name` with `nargs` arguments goes to, when that is
/// an overload other than the first definition.
pub(super) fn by_arity(
    functions: &HashMap<&str, &Function>,
    name: &str,
    nargs: usize,
) -> Option<String> {
    let primary = functions.get(name)?;
    if primary.params.len() == nargs {
        return None;
    }
    let other = format!("{name}#{nargs}");
    functions.contains_key(other.as_str()).then_some(other)
}
