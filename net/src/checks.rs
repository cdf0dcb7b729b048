//! Start-up checks the node runs before it builds any executor: the kernel is new enough
//! for glommio, io_uring is allowed, and the locked-memory limit fits the executors.
//! Each failure's message says what to change.
//!
//! What glommio 0.9 needs, measured (see [`crate::rt`] for the table):
//! - Linux 5.8 or later, with io_uring not disabled (`kernel.io_uring_disabled`) nor
//!   blocked by a seccomp profile (Docker's default blocks it);
//! - `RLIMIT_MEMLOCK` of at least 512 KiB — glommio refuses to start below that;
//! - and, unless the process has `CAP_IPC_LOCK`, room under that limit for
//!   [`locked_bytes_per_executor`] per executor (3 × io_memory: 192 KiB with
//!   [`IO_MEMORY`](crate::rt::IO_MEMORY)). The limit is per user, shared by all its
//!   processes. Without the room glommio still starts but runs its file I/O without
//!   registered buffers, so this check treats it as an error the operator should fix.

use std::io;

/// The capability bit of `CAP_IPC_LOCK` (linux/capability.h).
const CAP_IPC_LOCK: u32 = 14;

/// The oldest kernel glommio supports.
pub const MIN_KERNEL: (u32, u32) = (5, 8);
/// glommio refuses to start when `RLIMIT_MEMLOCK` is below this.
pub const GLOMMIO_MIN_MEMLOCK: u64 = 512 * 1024;

/// Why the machine cannot run the engine as configured.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(
        "Linux {found} is too old: glommio needs io_uring features of Linux {}.{} or later; \
         upgrade the kernel",
        MIN_KERNEL.0, MIN_KERNEL.1
    )]
    KernelTooOld { found: String },
    #[error("cannot read the kernel version: {0}")]
    KernelUnknown(String),
    #[error("{0}")]
    IoUringUnavailable(String),
    #[error("{0}")]
    MemlockTooLow(String),
}

/// The running kernel's `(major, minor)` and its full release string.
pub fn kernel_version() -> Result<((u32, u32), String), StartupError> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_err(|e| StartupError::KernelUnknown(e.to_string()))?;
    let release = release.trim().to_string();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let mut num = || parts.next().and_then(|p| p.parse::<u32>().ok());
    match (num(), num()) {
        (Some(major), Some(minor)) => Ok(((major, minor), release)),
        _ => Err(StartupError::KernelUnknown(format!(
            "unrecognised release {release:?}"
        ))),
    }
}

/// Fails unless the kernel is [`MIN_KERNEL`] or later.
pub fn check_kernel() -> Result<(u32, u32), StartupError> {
    let (v, release) = kernel_version()?;
    if v < MIN_KERNEL {
        return Err(StartupError::KernelTooOld { found: release });
    }
    Ok(v)
}

/// Fails unless this process may create an io_uring (tries one, 4 entries, and closes
/// it).
pub fn check_io_uring() -> Result<(), StartupError> {
    if let Ok(s) = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled") {
        match s.trim() {
            "2" => {
                return Err(StartupError::IoUringUnavailable(
                    "io_uring is disabled on this machine (kernel.io_uring_disabled = 2); \
                     enable it with `sysctl -w kernel.io_uring_disabled=0`"
                        .into(),
                ))
            }
            "1" => {} // allowed for CAP_SYS_ADMIN and the io_uring_group: the probe decides
            _ => {}
        }
    }
    // struct io_uring_params is 120 bytes; all zero asks for defaults.
    let mut params = [0u64; 15];
    // SAFETY: io_uring_setup(2) writes at most sizeof(struct io_uring_params) = 120
    // bytes into `params`, which is 120 bytes long and lives across the call.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 4u32, params.as_mut_ptr()) };
    if fd < 0 {
        let err = io::Error::last_os_error();
        let hint = match err.raw_os_error() {
            Some(libc::ENOSYS) => "the kernel was built without io_uring (CONFIG_IO_URING)",
            Some(libc::EPERM) => {
                "io_uring is not permitted: set kernel.io_uring_disabled=0 (or add this user to \
                 kernel.io_uring_group), or, in a container, use a seccomp profile that allows \
                 io_uring_setup, io_uring_enter and io_uring_register (e.g. docker run \
                 --security-opt seccomp=unconfined)"
            }
            Some(libc::ENOMEM) => "not enough locked memory for a ring: raise `ulimit -l`",
            _ => "io_uring_setup failed",
        };
        return Err(StartupError::IoUringUnavailable(format!(
            "cannot create an io_uring ({err}): {hint}"
        )));
    }
    // SAFETY: `fd` is the ring descriptor just returned to us; nothing else uses it.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

/// Locked memory one glommio executor pins with `io_memory` bytes of io memory: its io
/// buffer (rounded up to 4 KiB, at least 64 KiB) registered with each of its 3 rings.
/// Measured with `VmPin` on Linux 6.18 (see [`crate::rt`]).
pub fn locked_bytes_per_executor(io_memory: usize) -> u64 {
    let buf = (io_memory.max(64 * 1024) as u64).div_ceil(4096) * 4096;
    3 * buf
}

/// The current `RLIMIT_MEMLOCK` soft limit in bytes (`None` for unlimited).
pub fn memlock_limit() -> io::Result<Option<u64>> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes one struct rlimit into `r`.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(if r.rlim_cur == libc::RLIM_INFINITY {
        None
    } else {
        Some(r.rlim_cur)
    })
}

/// Whether this process holds `CAP_IPC_LOCK` (then the kernel does not charge io_uring
/// buffers against `RLIMIT_MEMLOCK`).
pub fn has_cap_ipc_lock() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0)
}

/// Human-readable byte counts for the messages.
pub fn fmt_bytes(b: u64) -> String {
    if b >= 1 << 30 && b & ((1 << 30) - 1) == 0 {
        format!("{} GiB", b >> 30)
    } else if b >= 1 << 20 && b & ((1 << 20) - 1) == 0 {
        format!("{} MiB", b >> 20)
    } else if b >= 1 << 10 {
        format!("{} KiB", b.div_ceil(1 << 10))
    } else {
        format!("{b} bytes")
    }
}

/// What [`check_memlock`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemlockReport {
    /// The soft limit (`None`: unlimited).
    pub limit: Option<u64>,
    /// What `executors` executors pin.
    pub needed: u64,
    /// Whether the process holds `CAP_IPC_LOCK` (the limit then only matters for
    /// glommio's own 512 KiB check).
    pub cap_ipc_lock: bool,
}

/// Fails unless `executors` glommio executors with `io_memory` bytes of io memory each
/// can start and register their buffers under the current `RLIMIT_MEMLOCK`.
pub fn check_memlock(executors: usize, io_memory: usize) -> Result<MemlockReport, StartupError> {
    let limit = memlock_limit()
        .map_err(|e| StartupError::MemlockTooLow(format!("cannot read RLIMIT_MEMLOCK: {e}")))?;
    let cap = has_cap_ipc_lock();
    evaluate_memlock(limit, cap, executors, io_memory)
}

/// [`check_memlock`] on given facts (for tests and for reporting).
pub fn evaluate_memlock(
    limit: Option<u64>,
    cap_ipc_lock: bool,
    executors: usize,
    io_memory: usize,
) -> Result<MemlockReport, StartupError> {
    let per = locked_bytes_per_executor(io_memory);
    let needed = per.saturating_mul(executors as u64);
    let report = MemlockReport {
        limit,
        needed,
        cap_ipc_lock,
    };
    let Some(limit) = limit else {
        return Ok(report);
    };
    let fix = "raise it with `ulimit -l unlimited` in the shell that starts the node, or set \
               `memlock` in /etc/security/limits.conf (`* - memlock unlimited`), or \
               `LimitMEMLOCK=infinity` in a systemd unit, or `--ulimit memlock=-1` for docker";
    if limit < GLOMMIO_MIN_MEMLOCK {
        return Err(StartupError::MemlockTooLow(format!(
            "the locked memory limit (RLIMIT_MEMLOCK) is {}; glommio refuses to start below {}; {fix}",
            fmt_bytes(limit),
            fmt_bytes(GLOMMIO_MIN_MEMLOCK)
        )));
    }
    if !cap_ipc_lock && needed > limit {
        return Err(StartupError::MemlockTooLow(format!(
            "the locked memory limit (RLIMIT_MEMLOCK) is {}; {executors} glommio executors with {} of \
             io memory each pin {} ({} each: 3 rings x io memory), and the limit is shared by every \
             process of this user; {fix}, or use fewer shards, or less io memory per executor",
            fmt_bytes(limit),
            fmt_bytes(io_memory as u64),
            fmt_bytes(needed),
            fmt_bytes(per)
        )));
    }
    Ok(report)
}

/// Every check, for `executors` executors built with [`crate::rt::executor_builder`].
pub fn check_all(executors: usize) -> Result<MemlockReport, StartupError> {
    check_kernel()?;
    check_io_uring()?;
    check_memlock(executors, crate::rt::IO_MEMORY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_passes() {
        let v = check_kernel().unwrap();
        assert!(v >= MIN_KERNEL);
        check_io_uring().unwrap();
        check_all(4).unwrap();
    }

    #[test]
    fn memlock_arithmetic_and_messages() {
        assert_eq!(locked_bytes_per_executor(crate::rt::IO_MEMORY), 192 * 1024);
        assert_eq!(locked_bytes_per_executor(1), 192 * 1024);
        assert_eq!(locked_bytes_per_executor(10 << 20), 30 << 20);
        let mib8 = Some(8u64 << 20);
        assert!(evaluate_memlock(mib8, false, 42, crate::rt::IO_MEMORY).is_ok());
        let e = evaluate_memlock(mib8, false, 43, crate::rt::IO_MEMORY)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is 8 MiB")
                && e.contains("ulimit -l unlimited")
                && e.contains("fewer shards"),
            "{e}"
        );
        let e = evaluate_memlock(mib8, false, 1, 10 << 20)
            .unwrap_err()
            .to_string();
        assert!(e.contains("30 MiB"), "{e}");
        // CAP_IPC_LOCK lifts the charge, not glommio's own minimum.
        assert!(evaluate_memlock(mib8, true, 1000, 10 << 20).is_ok());
        let e = evaluate_memlock(Some(64 << 10), true, 1, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is 64 KiB") && e.contains("512 KiB"), "{e}");
        assert!(evaluate_memlock(None, false, 1000, 10 << 20).is_ok());
    }
}
