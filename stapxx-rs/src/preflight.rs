//! Checks before anything is loaded: privileges and kernel features, each
//! failure one clear message naming what is missing.

use grammar::Diagnostic;

/// Capability bits (include/uapi/linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The oldest kernel whose BPF has everything the code generator emits:
/// signed division and sign-extending loads (cpu v4, 6.6), `bpf_loop` and
/// `bpf_strncmp` (5.17), `bpf_snprintf` (5.13), the ring buffer (5.8).
pub const MIN_KERNEL: (u32, u32) = (6, 6);

/// Fail unless this process may load BPF programs and open perf events.
pub fn check_privileges() -> Result<(), Diagnostic> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let has = |cap: u32| eff & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        return Ok(());
    }
    Err(Diagnostic::bare(
        "loading eBPF probes needs root, or the capabilities CAP_BPF and CAP_PERFMON \
         (for example: sudo stapxx-rs ..., or setcap cap_bpf,cap_perfmon+ep on the binary)",
    ))
}

/// Fail on a kernel older than [`MIN_KERNEL`].
pub fn check_kernel() -> Result<(), Diagnostic> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim();
    if kernel_at_least(release, MIN_KERNEL) {
        return Ok(());
    }
    Err(Diagnostic::bare(format!(
        "this kernel ({release}) is too old for stapxx-rs's eBPF code: it needs Linux {}.{} or newer \
         (BPF cpu v4 instructions: signed division and sign-extending loads; also bpf_loop, \
         bpf_strncmp, bpf_snprintf and the BPF ring buffer)",
        MIN_KERNEL.0, MIN_KERNEL.1
    )))
}

/// `6.1.0-13-amd64` >= (6, 6)?
pub fn kernel_at_least(release: &str, want: (u32, u32)) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let major: u32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (major, minor) >= want
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert!(kernel_at_least("6.18.44-fc-v669", (6, 6)));
        assert!(kernel_at_least("6.6.0", (6, 6)));
        assert!(!kernel_at_least("6.1.0-13-amd64", (6, 6)));
        assert!(!kernel_at_least("5.15.0", (6, 6)));
        assert!(!kernel_at_least("", (6, 6)));
    }
}
