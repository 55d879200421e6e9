//! Facts about the running kernel that `%( ... %)` conditions test:
//! `kernel_v`, `kernel_vr`, `arch` and the `CONFIG_*` values.

use grammar::PpConfig;
use std::collections::HashMap;
use std::io::Read;

/// The running kernel's release and `CONFIG_*` values, read once: they do
/// not change while we run; reading and inflating /proc/config.gz costs
/// about 1.5 ms, and a run asks several times (parsing, the library,
/// CONFIG_HZ, the tapsets' C tables).
fn kernel() -> &'static (String, HashMap<String, String>) {
    static KERNEL: std::sync::OnceLock<(String, HashMap<String, String>)> =
        std::sync::OnceLock::new();
    KERNEL.get_or_init(|| {
        let release = read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(|| "0.0.0".into());
        let kconfig = kernel_config(&release);
        (release, kconfig)
    })
}

/// The running kernel's `CONFIG_*` values (`y`, `m`, numbers, strings);
/// empty when its configuration cannot be read.
pub fn kconfig() -> &'static HashMap<String, String> {
    &kernel().1
}

/// The preprocessor configuration for this machine (no script arguments).
pub fn pp_config(guru_mode: bool) -> PpConfig {
    let (release, kconfig) = kernel();
    PpConfig {
        kernel_v: kernel_v(release),
        kernel_vr: release.clone(),
        arch: std::env::consts::ARCH.to_string(),
        // We implement the kernel runtime's semantics (loops, strings, ...),
        // so scripts see the runtime they were written for.
        runtime: "kernel".into(),
        systemtap_v: "5.0".into(),
        systemtap_privilege: "stapdev".into(),
        guru_mode,
        kconfig: kconfig.clone(),
        args: Vec::new(),
    }
}

/// `6.1.0-13-amd64` -> `6.1.0`: the release up to its first `-`.
pub fn kernel_v(release: &str) -> String {
    release
        .split(['-', '+'])
        .next()
        .unwrap_or(release)
        .to_string()
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// `CONFIG_*` from /proc/config.gz or /boot/config-RELEASE; empty when
/// neither exists (then every `CONFIG_X` test sees "").
fn kernel_config(release: &str) -> HashMap<String, String> {
    let text = read_config_gz("/proc/config.gz")
        .or_else(|| std::fs::read_to_string(format!("/boot/config-{release}")).ok())
        .unwrap_or_default();
    parse_kconfig(&text)
}

fn read_config_gz(path: &str) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let mut out = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut out)
        .ok()?;
    Some(out)
}

/// `CONFIG_X=y` lines; values keep their quotes stripped.
pub fn parse_kconfig(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| l.starts_with("CONFIG_"))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

/// This machine's page size (`mem_page_size()`).
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as u64
    } else {
        4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_version_forms() {
        assert_eq!(kernel_v("6.1.0-13-amd64"), "6.1.0");
        assert_eq!(kernel_v("6.18.44"), "6.18.44");
        let cfg = parse_kconfig("# c\nCONFIG_BPF=y\nCONFIG_X=\"ab\"\n# CONFIG_Y is not set\n");
        assert_eq!(cfg.get("CONFIG_BPF").map(String::as_str), Some("y"));
        assert_eq!(cfg.get("CONFIG_X").map(String::as_str), Some("ab"));
        assert!(!cfg.contains_key("CONFIG_Y"));
    }
}
