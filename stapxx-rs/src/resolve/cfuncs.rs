//! Embedded-C functions of the tapsets that pass 2 turns into script
//! functions, because eBPF cannot run C.
//!
//! Most formatters of `linux/aux_syscalls.stp` are one call of SystemTap's
//! runtime: `_stp_lookup_str(TABLE, arg, STAP_RETVALUE, MAXSTRINGLEN)`
//! or `_stp_lookup_or_str(...)` (the `2` forms take a base), maybe after
//! copying the argument into a typed C local. Any function of that shape is
//! recognised from its C text, whatever its name: its `TABLE` (a
//! `static const _stp_val_array TABLE[] = { V(X), {EXPR, "NAME"}, ... }`
//! in the embedded C of the loaded files) is rebuilt with the constants
//! data deciding `#ifdef`s and values, and the function becomes
//! `return __stapxx_lookup[_or]_str(arg as C converts it, base, "table")`
//! (see `valtable.rs`). A few functions that do a little more than one
//! lookup (`_sys_open_flag_str`, `_mmap_flags`) are translated by hand
//! below, still reading their table from the tapset text. Byte-order
//! conversions (`ntohs`, `be32_to_cpu`, ...) are one shape of their own
//! (`byteorder.rs`), the kernel's `IS_ERR` pointer test another
//! (`iserr.rs`), a `STAP_PRINTF` of the arguments (`log`) a third
//! (`printf.rs`), the device-number macros (`MKDEV`) a fourth
//! (`kdev.rs`). Anything else is refused with the reason.

mod byteorder;
mod iserr;
mod kdev;
mod printf;

use super::cexpr;
use crate::valtable;
use grammar::ast::*;
use grammar::Span;

/// A script body for the embedded-C function `f`, or why there is none.
/// `c_blocks` are the top-level `%{ %}` blocks of every loaded file.
pub fn translate(f: &Function, c_blocks: &[&str]) -> Result<Block, String> {
    let FunctionBody::Embedded(e) = &f.body else {
        return Err("not embedded C".into());
    };
    let (code, local) = local_tables(&strip_comments(&e.code));
    // The function's own tables come before the files' (C scoping).
    let blocks: Vec<&str> = local
        .iter()
        .map(String::as_str)
        .chain(c_blocks.iter().copied())
        .collect();
    // Functions whose job is to change the traced program or the kernel
    // (guru-mode tapsets): refused for what they are, not for their C.
    if let Some(why) = changes_the_target(&code) {
        return Err(why);
    }
    let b = B { span: f.span };
    match f.name.as_str() {
        "_sys_open_flag_str" => open_flags(&b, f, &code, &blocks),
        "_mmap_flags" => mmap_flags(&b, f, &code, &blocks),
        _ => match byteorder::translate(&b, f, &code)
            .or_else(|| iserr::translate(&b, f, &code))
            .or_else(|| printf::translate(&b, f, &code))
            .or_else(|| kdev::translate(&b, f, &code))
        {
            Some(body) => Ok(body),
            None => one_lookup(&b, f, &code, &blocks),
        },
    }
}

/// Why a function's C changes what stapxx-rs only reads: it signals a
/// task (`guru-signal.stp`'s `raise`) or writes kernel memory
/// (`conversions-guru.stp`'s `set_kernel_*`).
fn changes_the_target(code: &str) -> Option<String> {
    let calls = |f: &str| {
        code.match_indices(f).any(|(i, _)| {
            let before = code[..i].chars().next_back();
            let after = code[i + f.len()..].trim_start();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_') && after.starts_with('(')
        })
    };
    if ["send_sig", "send_sig_info", "force_sig", "kill_pid"]
        .iter()
        .any(|f| calls(f))
    {
        return Some("it sends a signal to a task, which changes the traced program: stapxx-rs only reads the target and the kernel, never changes them (stap does it in guru mode, -g)".into());
    }
    if [
        "kwrite",
        "store_kderef",
        "store_kderef_string",
        "store_deref",
        "store_deref_string",
    ]
    .iter()
    .any(|f| calls(f))
    {
        return Some("it writes kernel memory: stapxx-rs only reads the target and the kernel, never changes them (stap does it in guru mode, -g)".into());
    }
    None
}

/// `code` without the value tables it defines itself (`static const
/// _stp_val_array NAME[] = {...};` inside the function, as
/// `_stp_clock_nanosleep_flags_str` has it), and those tables' text.
fn local_tables(code: &str) -> (String, Vec<String>) {
    let head = regex::Regex::new(r"static\s+const\s+_stp_val_array\s+\w+\s*\[\s*\]\s*=\s*\{")
        .expect("valid regex");
    let mut rest = code.to_string();
    let mut tables = Vec::new();
    while let Some(m) = head.find(&rest) {
        // A table's entries end in "}," or "}": its own end is the first "};".
        let Some(len) = rest[m.end()..].find("};") else {
            break;
        };
        let end = m.end() + len + 2;
        tables.push(rest[m.start()..end].to_string());
        rest.replace_range(m.start()..end, "");
    }
    (rest, tables)
}

/// C comments removed (`/* pure */`, `// x86 only` after an `#ifdef`).
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |i| &r[i + 2..]);
            out.push(' ');
        } else if let Some(r) = rest.strip_prefix("//") {
            rest = r.find('\n').map_or("", |i| &r[i..]);
        } else if rest.starts_with('"') {
            // Keep string literals whole (a "//" inside one is no comment).
            let end = rest[1..].find('"').map_or(rest.len(), |i| i + 2);
            out.push_str(&rest[..end]);
            rest = &rest[end..];
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The captures of `pattern` over a C body that is exactly one statement
/// (the shape each translation of `cfuncs/` looks for); `None` otherwise.
fn one_statement<'c>(code: &'c str, pattern: &str) -> Option<regex::Captures<'c>> {
    let re = regex::Regex::new(pattern).expect("valid regex");
    let stmts = c_statements(code);
    let [stmt] = stmts.as_slice() else {
        return None;
    };
    re.captures(stmt)
}

/// The statements of a C body, trimmed, empty ones left out.
fn c_statements(code: &str) -> Vec<&str> {
    code.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// A C integer conversion: (bits, signed); 64 bits keeps a long as it is.
type Conv = (u32, bool);

/// How a C type converts a stap long.
fn c_type(t: &str) -> Option<Conv> {
    let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    Some(match t.as_str() {
        "int" | "signed int" | "signed" | "int32_t" | "s32" | "__s32" => (32, true),
        "unsigned int" | "unsigned" | "uint32_t" | "u32" | "__u32" => (32, false),
        "short" | "signed short" | "int16_t" | "s16" => (16, true),
        "unsigned short" | "uint16_t" | "u16" => (16, false),
        "char" | "signed char" | "int8_t" | "s8" => (8, true),
        "unsigned char" | "uint8_t" | "u8" => (8, false),
        "long" | "long long" | "signed long" | "int64_t" | "s64" | "unsigned long"
        | "unsigned long long" | "uint64_t" | "u64" => (64, true),
        _ => return None,
    })
}

/// The one-lookup shape: `[TYPE NAME = [(TYPE)]STAP_ARG_p;]*
/// _stp_lookup_[or_]str[2](TABLE, [(TYPE)]ARG, STAP_RETVALUE,
/// MAXSTRINGLEN[, BASE]);`
fn one_lookup(b: &B, f: &Function, code: &str, c_blocks: &[&str]) -> Result<Block, String> {
    let ty = r"((?:unsigned\s+|signed\s+)?(?:long\s+long|long|int|short|char)|unsigned|signed|u?int(?:8|16|32|64)_t|__[su](?:8|16|32|64)|[su](?:8|16|32|64))";
    let decl = regex::Regex::new(&format!(
        r"^{ty}\s+(\w+)\s*=\s*(?:\(\s*{ty}\s*\)\s*)?STAP_ARG_(\w+)$"
    ))
    .expect("valid regex");
    let call = regex::Regex::new(&format!(
        r"^_stp_lookup_(or_)?str(2)?\s*\(\s*(\w+)\s*,\s*(?:\(\s*{ty}\s*\)\s*)?(\w+)\s*,\s*STAP_RETVALUE\s*,\s*MAXSTRINGLEN\s*(?:,\s*(\d+)\s*)?\)$"
    ))
    .expect("valid regex");
    let stmts = c_statements(code);
    let Some((last, decls)) = stmts.split_last() else {
        return Err("its C body is empty".into());
    };
    // Each local: its name, the parameter it copies, the conversions.
    let mut locals: Vec<(String, String, Vec<Conv>)> = Vec::new();
    for d in decls {
        let c = decl.captures(d).ok_or_else(|| unrecognised(d))?;
        let mut conv = Vec::new();
        if let Some(cast) = c.get(3) {
            conv.push(c_type(cast.as_str()).ok_or_else(|| unrecognised(d))?);
        }
        conv.push(c_type(&c[1]).ok_or_else(|| unrecognised(d))?);
        locals.push((c[2].to_string(), c[4].to_string(), conv));
    }
    let c = call.captures(last).ok_or_else(|| unrecognised(last))?;
    let or = c.get(1).is_some();
    let base = match (c.get(2), c.get(6)) {
        (Some(_), Some(n)) => n.as_str().parse::<i64>().map_err(|_| unrecognised(last))?,
        (None, None) => 16,
        _ => return Err(unrecognised(last)),
    };
    let table = c[3].to_string();
    let arg = &c[5];
    let mut conv = Vec::new();
    let param = if let Some(p) = arg.strip_prefix("STAP_ARG_") {
        p.to_string()
    } else {
        let l = locals
            .iter()
            .find(|l| l.0 == arg)
            .ok_or_else(|| unrecognised(last))?;
        conv.extend(l.2.iter().copied());
        l.1.clone()
    };
    if let Some(cast) = c.get(4) {
        conv.push(c_type(cast.as_str()).ok_or_else(|| unrecognised(last))?);
    }
    if !f.params.iter().any(|p| p.name == param) {
        return Err(format!("its C reads STAP_ARG_{param}, not a parameter"));
    }
    // The runtime's `long val` parameter: one more conversion to long.
    let mut v = b.var(&param);
    for (bits, signed) in conv {
        v = b.convert(v, bits, signed);
    }
    let table = b.str(&valtable::encode(&read_table(&table, c_blocks)?));
    Ok(b.body(vec![b.ret(b.lookup(or, v, base, table))]))
}

fn unrecognised(stmt: &str) -> String {
    format!("its C statement '{stmt}' is not one stapxx-rs can translate")
}

/// The table a `_stp_lookup_or_str(TABLE, ...)` call in `code` names.
fn or_table(code: &str) -> Result<String, String> {
    let re = regex::Regex::new(r"_stp_lookup_or_str\s*\(\s*(\w+)").expect("valid regex");
    re.captures(code)
        .map(|c| c[1].to_string())
        .ok_or_else(|| "its C does not look a table up as expected".into())
}

fn constant(name: &str) -> Result<i64, String> {
    crate::consts::value(name).ok_or_else(|| format!("the C constant {name} is unknown"))
}

/// `_sys_open_flag_str(f)`: the access mode by name (`O_RDONLY` also for
/// the invalid mode 3, as stap), then `|` and the other flags of
/// `(int)f` through the open-mode table.
fn open_flags(b: &B, f: &Function, code: &str, c_blocks: &[&str]) -> Result<Block, String> {
    if !code.contains("O_ACCMODE") || f.params.len() != 1 {
        return Err("its C is not the access-mode switch stapxx-rs knows".into());
    }
    let table = valtable::encode(&read_table(&or_table(code)?, c_blocks)?);
    let accmode = constant("O_ACCMODE")?;
    let flags = || b.convert(b.var(&f.params[0].name), 32, true);
    let acc = || b.bin(BinOp::BitAnd, flags(), b.num(accmode));
    let mode = b.tern(
        b.bin(BinOp::Eq, acc(), b.num(constant("O_WRONLY")?)),
        b.str("O_WRONLY"),
        b.tern(
            b.bin(BinOp::Eq, acc(), b.num(constant("O_RDWR")?)),
            b.str("O_RDWR"),
            b.str("O_RDONLY"),
        ),
    );
    let rest = || b.bin(BinOp::BitAnd, flags(), b.num(!accmode));
    let others = b.tern(
        b.bin(BinOp::Ne, rest(), b.num(0)),
        b.bin(
            BinOp::Concat,
            b.str("|"),
            b.lookup(true, rest(), 16, b.str(&table)),
        ),
        b.str(""),
    );
    Ok(b.body(vec![b.ret(b.bin(BinOp::Concat, mode, others))]))
}

/// `_mmap_flags(flags)`: a huge page size field first
/// (`MAP_HUGE_2MB|`: 1 << (size - 10k) and the k-th unit), then the
/// other flags through the mmap table.
fn mmap_flags(b: &B, f: &Function, code: &str, c_blocks: &[&str]) -> Result<Block, String> {
    if !code.contains("MAP_HUGE_SHIFT") || f.params.len() != 1 {
        return Err("its C is not the huge-page prefix stapxx-rs knows".into());
    }
    let table = valtable::encode(&read_table(&or_table(code)?, c_blocks)?);
    let (shift, mask) = (constant("MAP_HUGE_SHIFT")?, constant("MAP_HUGE_MASK")?);
    let p = f.params[0].name.as_str();
    let (huge, size, unit) = ("__stapxx_huge", "__stapxx_size", "__stapxx_unit");
    let mut stmts = vec![
        // u8 huge = (flags >> MAP_HUGE_SHIFT) & MAP_HUGE_MASK
        b.assign(
            huge,
            b.convert(
                b.bin(
                    BinOp::BitAnd,
                    b.bin(BinOp::Shr, b.var(p), b.num(shift)),
                    b.num(mask),
                ),
                8,
                false,
            ),
        ),
        b.assign(p, b.bin(BinOp::BitAnd, b.var(p), b.num(!(mask << shift)))),
        b.assign(size, b.var(huge)),
        b.assign(unit, b.str("")),
    ];
    // The largest unit first: EB, PB, TB, GB, MB, KB.
    let mut chain: Option<Stmt> = None;
    for (k, u) in [
        (10, "KB"),
        (20, "MB"),
        (30, "GB"),
        (40, "TB"),
        (50, "PB"),
        (60, "EB"),
    ] {
        let then = b.block(vec![
            b.assign(size, b.bin(BinOp::Sub, b.var(size), b.num(k))),
            b.assign(unit, b.str(u)),
        ]);
        chain = Some(b.if_(b.bin(BinOp::Ge, b.var(size), b.num(k)), then, chain));
    }
    stmts.push(chain.expect("six units"));
    let prefix = b.tern(
        b.bin(BinOp::Ne, b.var(huge), b.num(0)),
        b.call(
            "sprintf",
            vec![
                b.str("MAP_HUGE_%d%s|"),
                b.bin(BinOp::Shl, b.num(1), b.var(size)),
                b.var(unit),
            ],
        ),
        b.str(""),
    );
    stmts.push(b.ret(b.bin(
        BinOp::Concat,
        prefix,
        b.lookup(true, b.var(p), 16, b.str(&table)),
    )));
    Ok(b.body(stmts))
}

/// The entries of `static const _stp_val_array NAME[] = {...}` in the
/// loaded files' embedded C, its `#if`s decided by the constants data.
pub fn read_table(name: &str, c_blocks: &[&str]) -> Result<Vec<(i64, String)>, String> {
    let head = regex::Regex::new(&format!(
        r"_stp_val_array\s+(?:const\s+)?{}\s*\[\s*\]\s*=\s*\{{",
        regex::escape(name)
    ))
    .expect("valid regex");
    let (text, start) = c_blocks
        .iter()
        .find_map(|t| head.find(t).map(|m| (*t, m.end())))
        .ok_or_else(|| format!("its table {name} is not in the loaded tapsets"))?;
    let body = strip_comments(&text[start..]);
    let entry = regex::Regex::new(
        r#"^\s*(?:V\(\s*(\w+)\s*\)|\{\s*([^{},]+?)\s*,\s*(?:"([^"]*)"|(NULL))\s*\})\s*,?\s*"#,
    )
    .expect("valid regex");
    let mut out = Vec::new();
    // #if nesting: (this branch is live, some branch was taken).
    let mut conds: Vec<(bool, bool)> = Vec::new();
    let live = |c: &[(bool, bool)]| c.iter().all(|x| x.0);
    let why = |e: String| format!("its table {name}: {e}");
    for line in body.lines() {
        let l = line.trim();
        if let Some(d) = l.strip_prefix('#') {
            let d = d.trim_start();
            let (kw, arg) = d.split_once(char::is_whitespace).unwrap_or((d, ""));
            let arg = arg.trim();
            match kw {
                "ifdef" => conds.push(known(arg).map(|v| (v, v)).map_err(why)?),
                "ifndef" => conds.push(known(arg).map(|v| (!v, !v)).map_err(why)?),
                "if" => {
                    let v = cexpr::eval(arg).map_err(why)? != 0;
                    conds.push((v, v));
                }
                "elif" => {
                    let top = conds.pop().ok_or_else(|| why("#elif without #if".into()))?;
                    let v = !top.1 && cexpr::eval(arg).map_err(why)? != 0;
                    conds.push((v, top.1 || v));
                }
                "else" => {
                    let top = conds.pop().ok_or_else(|| why("#else without #if".into()))?;
                    conds.push((!top.1, true));
                }
                "endif" => {
                    conds
                        .pop()
                        .ok_or_else(|| why("#endif without #if".into()))?;
                }
                _ => return Err(why(format!("the directive '#{kw}' is not understood"))),
            }
            continue;
        }
        if !live(&conds) {
            continue;
        }
        let mut rest = l;
        while !rest.is_empty() {
            if rest.starts_with("};") || rest == "}" {
                return Err(why("it has no {0, NULL} end".into()));
            }
            let c = entry
                .captures(rest)
                .ok_or_else(|| why(format!("the entry '{rest}' is not understood")))?;
            if c.get(4).is_some() {
                return Ok(out);
            }
            if let Some(n) = c.get(1) {
                out.push((
                    cexpr::eval(n.as_str()).map_err(why)?,
                    n.as_str().to_string(),
                ));
            } else {
                let label = c[3].to_string();
                if label.contains([';', '=']) {
                    return Err(why(format!("the name \"{label}\" is not understood")));
                }
                out.push((cexpr::eval(&c[2]).map_err(why)?, label));
            }
            rest = &rest[c.get(0).expect("match").end()..];
        }
    }
    Err(why("it has no {0, NULL} end".into()))
}

/// `#ifdef NAME`: known from the constants data; `CONFIG_*` from the
/// running kernel's configuration, as its `autoconf.h` defines them (for
/// `y` and values `CONFIG_X`, for `m` `CONFIG_X_MODULE`), the headers stap
/// would compile the tapset against. Without a readable configuration it
/// is refused rather than guessed.
fn known(name: &str) -> Result<bool, String> {
    if name.starts_with("CONFIG_") {
        let k = crate::system::kconfig();
        if k.is_empty() {
            return Err(format!(
                "'#ifdef {name}' depends on the kernel's configuration, which cannot be read here (no /proc/config.gz or /boot/config-RELEASE)"
            ));
        }
        if let Some(base) = name.strip_suffix("_MODULE") {
            if k.get(base).is_some_and(|v| v == "m") {
                return Ok(true);
            }
        }
        return Ok(k.get(name).is_some_and(|v| v != "m" && v != "n"));
    }
    Ok(crate::consts::value(name).is_some())
}

/// AST builder: every node at the embedded function's span.
struct B {
    span: Span,
}

impl B {
    fn e(&self, kind: ExprKind) -> Expr {
        Expr {
            kind,
            span: self.span,
        }
    }
    fn s(&self, kind: StmtKind) -> Stmt {
        Stmt {
            kind,
            span: self.span,
        }
    }
    fn num(&self, v: i64) -> Expr {
        self.e(ExprKind::Number(v))
    }
    fn str(&self, s: &str) -> Expr {
        self.e(ExprKind::String(s.to_string()))
    }
    fn var(&self, n: &str) -> Expr {
        self.e(ExprKind::Var(n.to_string()))
    }
    fn bin(&self, op: BinOp, a: Expr, c: Expr) -> Expr {
        self.e(ExprKind::Binary {
            op,
            lhs: Box::new(a),
            rhs: Box::new(c),
        })
    }
    fn tern(&self, c: Expr, a: Expr, o: Expr) -> Expr {
        self.e(ExprKind::Ternary {
            cond: Box::new(c),
            then: Box::new(a),
            otherwise: Box::new(o),
        })
    }
    fn call(&self, name: &str, args: Vec<Expr>) -> Expr {
        self.e(ExprKind::Call {
            name: name.to_string(),
            args,
        })
    }
    fn lookup(&self, or: bool, v: Expr, base: i64, table: Expr) -> Expr {
        let name = if or {
            "__stapxx_lookup_or_str"
        } else {
            "__stapxx_lookup_str"
        };
        self.call(name, vec![v, self.num(base), table])
    }
    /// What a C conversion to a `bits`-wide integer does to a long.
    fn convert(&self, v: Expr, bits: u32, signed: bool) -> Expr {
        if bits >= 64 {
            return v;
        }
        let mask = self.bin(BinOp::BitAnd, v, self.num((1i64 << bits) - 1));
        if !signed {
            return mask;
        }
        let sign = 1i64 << (bits - 1);
        self.bin(
            BinOp::Sub,
            self.bin(BinOp::BitXor, mask, self.num(sign)),
            self.num(sign),
        )
    }
    fn assign(&self, name: &str, v: Expr) -> Stmt {
        self.s(StmtKind::Expr(self.e(ExprKind::Assign {
            op: AssignOp::Assign,
            lhs: Box::new(self.var(name)),
            rhs: Box::new(v),
        })))
    }
    fn ret(&self, v: Expr) -> Stmt {
        self.s(StmtKind::Return(Some(v)))
    }
    fn block(&self, stmts: Vec<Stmt>) -> Stmt {
        self.s(StmtKind::Block(self.body(stmts)))
    }
    fn if_(&self, cond: Expr, then: Stmt, otherwise: Option<Stmt>) -> Stmt {
        self.s(StmtKind::If {
            cond,
            then: Box::new(then),
            otherwise: otherwise.map(Box::new),
        })
    }
    fn body(&self, stmts: Vec<Stmt>) -> Block {
        Block {
            stmts,
            span: self.span,
        }
    }
}

#[cfg(test)]
mod tests;
