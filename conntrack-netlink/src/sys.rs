//! The few system calls `netlink-sys` does not wrap: `SO_RCVBUFFORCE`,
//! `SO_RCVTIMEO`, `setns(2)` and `clock_gettime(CLOCK_MONOTONIC)`; with
//! feature `trace`, two `bpf(2)` commands libbpf-rs does not wrap
//! (`BPF_ENABLE_STATS`, a program's run-time statistics).
//!
//! This is the crate's only module with `unsafe` code; every block says why
//! it is sound. Everything else goes through `netlink-sys` or `std`.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

fn setsockopt_int(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    // SAFETY: `fd` is a live descriptor borrowed for the call; the option
    // value points to a properly aligned `c_int` on our stack that outlives
    // the call, and its size is passed exactly.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            core::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `setsockopt(SOL_SOCKET, SO_RCVBUFFORCE)`: sets the receive buffer past
/// `net.core.rmem_max`; needs `CAP_NET_ADMIN` (`EPERM` otherwise).
pub(crate) fn set_rcvbuf_force(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<()> {
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v)
}

/// `setsockopt(SOL_SOCKET, SO_RCVTIMEO)`; `None` blocks forever.
pub(crate) fn set_rcv_timeout(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<()> {
    let tv = match timeout {
        None => libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        Some(d) => {
            let mut tv = libc::timeval {
                tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_usec: libc::suseconds_t::from(d.subsec_micros() as i32),
            };
            // A zero timeval means "forever"; round a tiny timeout up.
            if tv.tv_sec == 0 && tv.tv_usec == 0 {
                tv.tv_usec = 1;
            }
            tv
        }
    };
    // SAFETY: as above; the option value is a `timeval` on our stack whose
    // exact size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            core::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `setns(fd, CLONE_NEWNET)`: moves the *calling thread* into the network
/// namespace `fd` refers to. Callers run it on a thread of their own.
pub(crate) fn setns_net(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: `fd` is a live descriptor borrowed for the call; setns only
    // reads it and changes the calling thread's namespace, no memory is
    // shared with the kernel.
    let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(feature = "trace")]
/// `clock_gettime(CLOCK_MONOTONIC)` in nanoseconds: the clock of
/// `bpf_ktime_get_ns()`, which drop records are stamped with.
pub(crate) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec on our stack for the
    // duration of the call; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc < 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// `BPF_ENABLE_STATS` with `BPF_STATS_RUN_TIME` (through libbpf's
/// `bpf_enable_stats()`): every BPF program's `run_cnt` and
/// `run_time_ns` count while the returned descriptor is open
/// (kernel/bpf/syscall.c: bpf_enable_runtime_stats() takes a reference
/// on `bpf_stats_enabled_key`, the descriptor's release drops it). No
/// sysctl changes; needs `CAP_SYS_ADMIN`.
#[cfg(feature = "trace")]
pub(crate) fn bpf_enable_run_time_stats() -> io::Result<std::os::fd::OwnedFd> {
    use libbpf_rs::libbpf_sys;
    use std::os::fd::FromRawFd;
    // SAFETY: bpf_enable_stats() takes a plain integer and shares no
    // memory with the caller; it returns a new descriptor or -errno.
    let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: `fd` was just returned by the kernel for us and nothing
    // else owns it, so it may be owned (and closed) here.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// `run_cnt` and `run_time_ns` of the BPF program `fd` refers to
/// (`BPF_OBJ_GET_INFO_BY_FD` through libbpf's bpf_obj_get_info_by_fd()).
#[cfg(feature = "trace")]
pub(crate) fn bpf_prog_run_stats(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    use libbpf_rs::libbpf_sys;
    let mut info = libbpf_sys::bpf_prog_info::default();
    let mut len = u32::try_from(core::mem::size_of::<libbpf_sys::bpf_prog_info>()).unwrap_or(0);
    // SAFETY: `fd` is a live descriptor borrowed for the call; `info` is a
    // writable `bpf_prog_info` on our stack and `len` its exact size, which
    // the kernel writes no further than. Every pointer and array-length
    // field of `info` is zero, so the kernel fills in no arrays.
    let rc = unsafe {
        libbpf_sys::bpf_obj_get_info_by_fd(
            fd.as_raw_fd(),
            (&mut info as *mut libbpf_sys::bpf_prog_info).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::from_raw_os_error(-rc));
    }
    Ok((info.run_cnt, info.run_time_ns))
}

/// `sched_setaffinity(0, {cpu})`: pins the *calling thread* to one CPU
/// (the lab's racing senders, so that their packets are processed on
/// different CPUs at once).
#[cfg(feature = "lab")]
pub(crate) fn pin_current_thread(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is beyond CPU_SETSIZE"),
        ));
    }
    // SAFETY: `cpu_set_t` is plain data for which all-zero bytes are the
    // empty set; CPU_SET writes inside it because `cpu` was checked
    // against CPU_SETSIZE above.
    let mut set: libc::cpu_set_t = unsafe { core::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: the set lives on our stack for the call and its exact size
    // is passed; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, core::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}
