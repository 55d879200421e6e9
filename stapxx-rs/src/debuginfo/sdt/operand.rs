//! One SDT argument spec (`-4@%edi`, `8@-24(%rbp)`, `-4@$42`,
//! `8@counter(%rip)`), x86-64 AT&T syntax, turned into where the value is.

use std::fmt;

/// A 64-bit x86-64 general-purpose register as the runtime reads it
/// (`u_register("rdi")`), and which part of it the spec named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reg {
    /// The 64-bit register: `%edi`, `%di` and `%dil` all give `"rdi"`.
    pub name: &'static str,
    /// Bytes of the register as written (`%edi` 4, `%dil` 1, `%ah` 1).
    /// sys/sdt.h says the argument's size governs when the two differ.
    pub width: u8,
    /// Bits to shift the 64-bit value right before truncating: 8 for the
    /// high-byte registers `%ah %bh %ch %dh`, 0 otherwise.
    pub shift: u8,
}

/// Where an argument's value is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// The value is (the low `size` bytes of) a register.
    Register(Reg),
    /// The value is in memory at `base + index * scale + disp`.
    ///
    /// When `base` is `None`, `disp` is a link-time address (add the
    /// module's load bias for the runtime one): that is how `sym(%rip)` and
    /// `sym+8(%rip)` come out, resolved through the symbol table, and how a
    /// non-PIE absolute `sym` or `0x601040` does. A numeric `-8(%rip)` is an
    /// error: a note does not say which instruction it is relative to.
    ///
    /// A symbolic displacement with a base register (`sym(%rbx)`, non-PIE
    /// code only) is also resolved to the symbol's link-time address.
    Memory {
        base: Option<Reg>,
        /// Index register and scale (1, 2, 4 or 8).
        index: Option<(Reg, u8)>,
        disp: i64,
        /// The symbolic displacement as written (`counter+8`), already
        /// resolved into `disp`; `None` for a numeric one.
        rip_symbol: Option<String>,
    },
    /// An immediate (`$42`, `$-7`).
    Constant(i64),
}

/// One argument of a marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// Bytes: 1, 2, 4 or 8. A spec without `SIZE@` (old sys/sdt.h) is read
    /// as a signed 8-byte `long`, as GDB and SystemTap do.
    pub size: u8,
    /// A negative size in the spec: sign-extend from `size` bytes.
    pub signed: bool,
    /// The spec had `f` after the size (`8f@...`): a floating-point value.
    pub float: bool,
    pub operand: Operand,
}

/// Looks a symbol up: its link-time address.
pub type SymbolLookup<'a> = &'a dyn Fn(&str) -> Option<u64>;

/// Parses one spec. The error is the reason, without the spec (the caller
/// names the marker and the operand).
pub fn parse_arg(spec: &str, lookup: SymbolLookup<'_>) -> Result<Arg, String> {
    let (size, signed, float, operand) = match spec.split_once('@') {
        Some((prefix, operand)) => {
            let (signed, rest) = match prefix.strip_prefix('-') {
                Some(r) => (true, r),
                None => (false, prefix),
            };
            let (float, digits) = match rest.strip_suffix('f') {
                Some(d) => (true, d),
                None => (false, rest),
            };
            let size: u8 = digits
                .parse()
                .map_err(|_| format!("bad size prefix '{prefix}@'"))?;
            if !matches!(size, 1 | 2 | 4 | 8) {
                return Err(format!("argument size {size} is not 1, 2, 4 or 8"));
            }
            (size, signed, float, operand)
        }
        None => (8, true, false, spec),
    };
    if operand.is_empty() {
        return Err("empty operand".into());
    }
    let operand = parse_operand(operand, lookup)?;
    Ok(Arg {
        size,
        signed,
        float,
        operand,
    })
}

fn parse_operand(op: &str, lookup: SymbolLookup<'_>) -> Result<Operand, String> {
    if let Some(name) = op.strip_prefix('%') {
        if name.contains(':') {
            return Err("segment-relative operands are not supported".into());
        }
        if name == "rip" || name == "eip" {
            return Err("the instruction pointer is not an argument value".into());
        }
        return reg(name)
            .map(Operand::Register)
            .ok_or_else(|| format!("'%{name}' is not a general-purpose register"));
    }
    if let Some(imm) = op.strip_prefix('$') {
        return parse_int(imm)
            .map(Operand::Constant)
            .ok_or_else(|| format!("'${imm}' is not an integer constant"));
    }
    parse_memory(op, lookup)
}

fn parse_memory(op: &str, lookup: SymbolLookup<'_>) -> Result<Operand, String> {
    let (disp_text, inside) = match op.find('(') {
        Some(open) => {
            let inner = op[open + 1..]
                .strip_suffix(')')
                .ok_or("unbalanced parentheses")?;
            (&op[..open], Some(inner))
        }
        None => (op, None),
    };
    let mut base = None;
    let mut index = None;
    let mut rip = false;
    if let Some(inner) = inside {
        let parts: Vec<&str> = inner.split(',').collect();
        if parts.len() > 3 {
            return Err("more than base, index and scale in parentheses".into());
        }
        match parts[0] {
            "" => {}
            "%rip" => rip = true,
            b => base = Some(mem_reg(b)?),
        }
        if let Some(&i) = parts.get(1) {
            let scale = match parts.get(2) {
                None | Some(&"") => 1,
                Some(s) => match s.parse::<u8>() {
                    Ok(n @ (1 | 2 | 4 | 8)) => n,
                    _ => return Err(format!("scale '{s}' is not 1, 2, 4 or 8")),
                },
            };
            index = Some((mem_reg(i)?, scale));
        }
        if rip && index.is_some() {
            return Err("%rip cannot be used with an index".into());
        }
        if base.is_none() && index.is_none() && !rip {
            return Err("empty parentheses".into());
        }
    }
    let (disp, symbol) = parse_disp(disp_text, lookup)?;
    if rip && symbol.is_none() {
        // The note says nothing about which instruction the offset is
        // relative to, so only a symbol gives an address.
        return Err("%rip-relative operand without a symbol".into());
    }
    Ok(Operand::Memory {
        base,
        index,
        disp,
        rip_symbol: symbol,
    })
}

/// A displacement: empty, an integer, or `sym`, `sym+N`, `sym-N`.
fn parse_disp(text: &str, lookup: SymbolLookup<'_>) -> Result<(i64, Option<String>), String> {
    if text.is_empty() {
        return Ok((0, None));
    }
    if let Some(n) = parse_int(text) {
        return Ok((n, None));
    }
    // The symbol ends at the first '+' or '-' after its first character.
    let first = text.chars().next().map_or(0, char::len_utf8);
    let split = text[first..].find(['+', '-']).map(|i| i + first);
    let (name, offset) = match split {
        Some(at) => {
            let off = parse_int(&text[at..]).ok_or_else(|| format!("bad displacement '{text}'"))?;
            (&text[..at], off)
        }
        None => (text, 0),
    };
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '$'))
    {
        return Err(format!("bad displacement '{text}'"));
    }
    let addr = lookup(name).ok_or_else(|| format!("symbol '{name}' is not in the symbol table"))?;
    Ok(((addr as i64).wrapping_add(offset), Some(text.to_string())))
}

fn mem_reg(text: &str) -> Result<Reg, String> {
    let name = text
        .strip_prefix('%')
        .ok_or_else(|| format!("'{text}' is not a register"))?;
    match reg(name) {
        Some(r) if r.shift == 0 && r.width >= 4 => Ok(r),
        _ => Err(format!("'{text}' cannot address memory")),
    }
}

/// Decimal or `0x` hex, with an optional sign; hex up to 64 bits wraps.
fn parse_int(text: &str) -> Option<i64> {
    let (neg, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = match digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            digits.parse::<u64>().ok()?
        }
        None => return None,
    };
    let v = magnitude as i64;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// The legacy eight, in encoding order, with their narrower names.
const LEGACY: [(&str, &str, &str, &str); 8] = [
    ("rax", "eax", "ax", "al"),
    ("rcx", "ecx", "cx", "cl"),
    ("rdx", "edx", "dx", "dl"),
    ("rbx", "ebx", "bx", "bl"),
    ("rsp", "esp", "sp", "spl"),
    ("rbp", "ebp", "bp", "bpl"),
    ("rsi", "esi", "si", "sil"),
    ("rdi", "edi", "di", "dil"),
];

const NUMBERED: [&str; 8] = ["r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];

/// A register name without `%`: the 64-bit register it is part of.
pub fn reg(name: &str) -> Option<Reg> {
    let r = |name, width, shift| Some(Reg { name, width, shift });
    for (q, d, w, b) in LEGACY {
        if name == q {
            return r(q, 8, 0);
        }
        if name == d {
            return r(q, 4, 0);
        }
        if name == w {
            return r(q, 2, 0);
        }
        if name == b {
            return r(q, 1, 0);
        }
    }
    // %ah .. %dh: bits 8..15 of the first four.
    if let Some(i) = ["ah", "ch", "dh", "bh"].iter().position(|&h| h == name) {
        return r(LEGACY[i].0, 1, 8);
    }
    for q in NUMBERED {
        let Some(suffix) = name.strip_prefix(q) else {
            continue;
        };
        let width = match suffix {
            "" => 8,
            "d" => 4,
            "w" => 2,
            "b" | "l" => 1,
            _ => continue,
        };
        return r(q, width, 0);
    }
    None
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)?;
        if self.shift != 0 {
            write!(f, ">>{}", self.shift)?;
        }
        Ok(())
    }
}
