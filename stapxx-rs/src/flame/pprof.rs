//! Backtraces as a pprof profile (`profile.proto`, gzipped): what `go tool
//! pprof`, Pyroscope and Parca read. One location per distinct frame, a
//! function per name and file: Lua frames named as in the flame graph
//! (`module:function`) with their chunk's file and line, `C:` functions,
//! fast functions (`builtin#N`) and native frames by name. Two sample
//! types: `samples/count` and `cpu/nanoseconds` (count x the sampling
//! period).
//!
//! The messages are declared here with prost's derive (field numbers from
//! pprof's `profile.proto`), only the fields written.

use super::collect::Backtraces;
use super::lua::Namer;
use flate2::write::GzEncoder;
use prost::Message;
use std::collections::HashMap;
use std::io::Write;

#[derive(Clone, PartialEq, Message)]
pub struct Profile {
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    pub period: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct ValueType {
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
    #[prost(message, repeated, tag = "3")]
    pub label: Vec<Label>,
}

/// A sample's label: a string value (pid, executable, VM state, ...).
#[derive(Clone, PartialEq, Message)]
pub struct Label {
    #[prost(int64, tag = "1")]
    pub key: i64,
    #[prost(int64, tag = "2")]
    pub str: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Location {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Line {
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    #[prost(int64, tag = "2")]
    pub line: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Function {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int64, tag = "2")]
    pub name: i64,
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    #[prost(int64, tag = "4")]
    pub filename: i64,
}

/// When and how the samples were taken.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Nanoseconds between two samples of one CPU (timer.profile: 1/HZ).
    pub period_ns: i64,
    /// Start of the collection, ns since the epoch.
    pub time_nanos: i64,
    pub duration_nanos: i64,
}

/// The profile of `bt` (frames named as the flame graph names them).
pub fn profile(bt: &Backtraces, namer: &mut Namer, t: Timing) -> Profile {
    let mut b = Builder::default();
    b.string("");
    let samples_t = ValueType {
        r#type: b.string("samples"),
        unit: b.string("count"),
    };
    let cpu_t = ValueType {
        r#type: b.string("cpu"),
        unit: b.string("nanoseconds"),
    };
    let mut samples = Vec::new();
    for (frames, labels, count) in &bt.samples {
        // Innermost first, as pprof wants the leaf first.
        let location_id = frames
            .iter()
            .map(|f| b.location(f, bt.native.contains(f), namer))
            .collect();
        let n = i64::try_from(*count).unwrap_or(i64::MAX);
        let label = labels
            .iter()
            .map(|(k, v)| Label {
                key: b.string(k),
                str: b.string(v),
            })
            .collect();
        samples.push(Sample {
            location_id,
            value: vec![n, n.saturating_mul(t.period_ns)],
            label,
        });
    }
    Profile {
        sample_type: vec![samples_t, cpu_t.clone()],
        sample: samples,
        location: b.locations,
        function: b.functions,
        string_table: b.strings,
        time_nanos: t.time_nanos,
        duration_nanos: t.duration_nanos,
        period_type: Some(cpu_t),
        period: t.period_ns,
    }
}

/// The gzipped encoding (what `go tool pprof` and Pyroscope's ingest take).
pub fn gzipped(p: &Profile) -> std::io::Result<Vec<u8>> {
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&p.encode_to_vec())?;
    gz.finish()
}

#[derive(Default)]
struct Builder {
    strings: Vec<String>,
    string_ids: HashMap<String, i64>,
    functions: Vec<Function>,
    function_ids: HashMap<(String, String), u64>,
    locations: Vec<Location>,
    location_ids: HashMap<String, u64>,
}

impl Builder {
    fn string(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.string_ids.get(s) {
            return i;
        }
        let i = self.strings.len() as i64;
        self.strings.push(s.to_string());
        self.string_ids.insert(s.to_string(), i);
        i
    }

    fn function(&mut self, name: &str, file: &str) -> u64 {
        let key = (name.to_string(), file.to_string());
        if let Some(&id) = self.function_ids.get(&key) {
            return id;
        }
        let id = self.functions.len() as u64 + 1;
        let (n, f) = (self.string(name), self.string(file));
        self.functions.push(Function {
            id,
            name: n,
            system_name: n,
            filename: f,
        });
        self.function_ids.insert(key, id);
        id
    }

    /// The location of one frame as printed.
    fn location(&mut self, frame: &str, native: bool, namer: &mut Namer) -> u64 {
        if let Some(&id) = self.location_ids.get(frame) {
            return id;
        }
        let (name, file, line) = if native {
            (frame.to_string(), String::new(), 0)
        } else {
            let (file, line) = lua_place(frame);
            (namer.name(frame), file, line)
        };
        let function_id = self.function(&name, &file);
        let id = self.locations.len() as u64 + 1;
        self.locations.push(Location {
            id,
            line: vec![Line { function_id, line }],
        });
        self.location_ids.insert(frame.to_string(), id);
        id
    }
}

/// The file and line of a Lua frame (`@path:LINE`, `T:@path:LINE`,
/// `=chunk:LINE`); none for other frames.
fn lua_place(frame: &str) -> (String, i64) {
    let f = frame.strip_prefix("T:").unwrap_or(frame);
    let Some(rest) = f.strip_prefix('@').or_else(|| f.strip_prefix('=')) else {
        return (String::new(), 0);
    };
    match rest.rsplit_once(':') {
        Some((file, line)) if !file.is_empty() => match line.parse() {
            Ok(n) => (file.to_string(), n),
            Err(_) => (String::new(), 0),
        },
        _ => (String::new(), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flame::collect;
    use crate::flame::lua::SourceRoot;

    #[test]
    fn locations_functions_and_values() {
        let bt = collect::parse(
            b"C:f\n@/x/a.lua:3\n\t5\n# pid=12 state=gc\nbuiltin#9\n@/x/a.lua:3\n\t2\n",
        );
        let mut namer = Namer::new(SourceRoot::Host);
        let p = profile(
            &bt,
            &mut namer,
            Timing {
                period_ns: 4_000_000,
                time_nanos: 1,
                duration_nanos: 2,
            },
        );
        let s = |i: i64| p.string_table[i as usize].as_str();
        assert_eq!(s(0), "");
        assert_eq!(
            p.sample_type
                .iter()
                .map(|t| (s(t.r#type), s(t.unit)))
                .collect::<Vec<_>>(),
            [("samples", "count"), ("cpu", "nanoseconds")]
        );
        let mut got: Vec<(Vec<String>, Vec<i64>)> = p
            .sample
            .iter()
            .map(|x| {
                let names = x
                    .location_id
                    .iter()
                    .map(|id| {
                        let l = &p.location[*id as usize - 1];
                        let f = &p.function[l.line[0].function_id as usize - 1];
                        format!("{}|{}|{}", s(f.name), s(f.filename), l.line[0].line)
                    })
                    .collect();
                (names, x.value.clone())
            })
            .collect();
        got.sort();
        // (/x/a.lua cannot be read: the frame keeps its printed name.)
        let lua = "@/x/a.lua:3|/x/a.lua|3".to_string();
        assert_eq!(
            got,
            vec![
                (vec!["C:f||0".to_string(), lua.clone()], vec![5, 20_000_000]),
                (vec!["builtin#9||0".to_string(), lua], vec![2, 8_000_000]),
            ]
        );
        // One location for the shared frame.
        assert_eq!(p.location.len(), 3);
        let labels: Vec<Vec<(&str, &str)>> = p
            .sample
            .iter()
            .map(|x| x.label.iter().map(|l| (s(l.key), s(l.str))).collect())
            .collect();
        assert_eq!(labels, vec![vec![], vec![("pid", "12"), ("state", "gc")]]);
        let bytes = gzipped(&p).unwrap();
        assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
    }
}
