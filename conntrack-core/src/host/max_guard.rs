//! Raising the global `net.netfilter.nf_conntrack_max` for a while:
//! [`ConntrackMaxGuard`] raises it and puts the old value back when the
//! last guard is dropped, coordinating with guards in other threads and
//! processes.
//!
//! `nf_conntrack_max` is one global value compared against each network
//! namespace's own count, and only the initial namespace may write it
//! (read-only elsewhere since Linux 5.13). Tests, benchmarks and tools
//! that fill a table past the default use a guard; [`read_max`] reads the
//! current value.
//!
//! This is the one part of `host` that writes: everything else here reads.

use super::global_guard::GlobalSysctlShare;
use super::reader::HostFs;
use std::io;
use std::path::Path;

/// The sysctl file the guard writes (and [`HostFs::read_max`] reads).
const MAX_PATH: &str = "/proc/sys/net/netfilter/nf_conntrack_max";

/// Raises the global `net.netfilter.nf_conntrack_max` to at least a value
/// and restores it when the last guard is dropped. Only the initial network
/// namespace may write it (read-only elsewhere since 5.13); 0 means
/// unlimited and is left alone.
///
/// The value is global, so guards coordinate across threads and processes
/// through a lock file and a holders file in [`ConntrackMaxGuard::STATE_DIR`]
/// (`flock`-protected): the first guard records the original value, every
/// guard registers its minimum under its PID, the sysctl is kept at the
/// largest minimum of the live holders, and the original is written back
/// when no holder remains. Holders whose process died (a test killed
/// mid-run) are pruned, so a crash does not pin the raised value for later
/// runs: the next guard restores it first. (Guards that each restored the
/// value they had found, in drop order, used to leave a raised value
/// behind when they overlapped.)
///
/// Each guard also holds a [`GlobalSysctlShare`] for its life, so it
/// waits for, and is never overlapped by, a
/// [`super::global_guard::GlobalSysctlGuard`] that changes the global
/// values (a lab that shrinks the buckets or lowers the max). Do not take
/// one in a thread that holds such a guard: it would wait for itself.
///
/// ```no_run
/// # fn main() -> std::io::Result<()> {
/// use conntrack_core::host::max_guard::{ConntrackMaxGuard, read_max};
/// let guard = ConntrackMaxGuard::at_least(2_000_000)?; // needs root
/// assert!(read_max()? >= 2_000_000 || guard.previous() == 0);
/// drop(guard); // the value before the guard is back
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ConntrackMaxGuard {
    old: u64,
    min: u64,
    active: bool,
    // Released after the value is restored (fields drop after `drop`).
    _share: GlobalSysctlShare,
}

/// The coordination state: the value before the first live guard, and one
/// `(pid, minimum)` per live guard.
#[derive(Debug, Default, PartialEq, Eq)]
struct MaxState {
    original: Option<u64>,
    holders: Vec<(u32, u64)>,
}

impl MaxState {
    fn parse(text: &str) -> MaxState {
        let mut st = MaxState::default();
        for line in text.lines() {
            let mut w = line.split_whitespace();
            match (w.next(), w.next(), w.next()) {
                (Some("original"), Some(v), None) => st.original = v.parse().ok(),
                (Some("holder"), Some(pid), Some(min)) => {
                    if let (Ok(pid), Ok(min)) = (pid.parse(), min.parse()) {
                        st.holders.push((pid, min));
                    }
                }
                _ => {}
            }
        }
        st
    }

    fn render(&self) -> String {
        let mut out = String::new();
        if let Some(o) = self.original {
            out.push_str(&format!("original {o}\n"));
        }
        for (pid, min) in &self.holders {
            out.push_str(&format!("holder {pid} {min}\n"));
        }
        out
    }

    /// The value the sysctl should have: the original, raised to the
    /// largest minimum of the holders.
    fn target(&self) -> Option<u64> {
        let o = self.original?;
        Some(self.holders.iter().map(|h| h.1).fold(o, u64::max))
    }
}

/// Runs `f` on the coordination state under an exclusive lock.
fn with_max_state<T>(f: impl FnOnce(&mut MaxState) -> io::Result<T>) -> io::Result<T> {
    let dir = Path::new(ConntrackMaxGuard::STATE_DIR);
    std::fs::create_dir_all(dir)?;
    let lock = std::fs::File::create(dir.join("nf_conntrack_max.lock"))?;
    lock.lock()?;
    let path = dir.join("nf_conntrack_max.state");
    let mut st = MaxState::parse(&std::fs::read_to_string(&path).unwrap_or_default());
    // Holders whose process is gone no longer need the raised value.
    st.holders
        .retain(|(pid, _)| Path::new(&format!("/proc/{pid}")).exists());
    let r = f(&mut st)?;
    if st.holders.is_empty() {
        let _ = std::fs::remove_file(&path);
    } else {
        std::fs::write(&path, st.render())?;
    }
    Ok(r)
    // `lock` is released when the file is closed.
}

fn write_max(value: u64) -> io::Result<()> {
    std::fs::write(MAX_PATH, value.to_string())
}

impl ConntrackMaxGuard {
    /// Where the guards coordinate (a tmpfs on systemd hosts).
    pub const STATE_DIR: &'static str = "/run/conntrack-kit";

    /// Raises `nf_conntrack_max` to `min` if it is lower.
    pub fn at_least(min: u64) -> io::Result<ConntrackMaxGuard> {
        let share = GlobalSysctlShare::acquire()?;
        let (old, active) = with_max_state(|st| {
            let mut current = read_max()?;
            if st.holders.is_empty() {
                // No live guard: a value left raised by a run that died
                // holding a guard is put back before this guard records
                // the original.
                if let Some(o) = st.original.filter(|&o| o != current) {
                    write_max(o)?;
                    current = o;
                }
                st.original = Some(current);
            }
            let old = st.original.unwrap_or(current);
            if old == 0 {
                // Unlimited: nothing to raise, nothing to restore.
                return Ok((old, false));
            }
            st.holders.push((std::process::id(), min));
            let target = st.target().unwrap_or(current);
            if target != read_max()? {
                write_max(target)?;
            }
            Ok((old, true))
        })?;
        Ok(ConntrackMaxGuard {
            old,
            min,
            active,
            _share: share,
        })
    }

    /// The value before the first live guard changed it.
    pub fn previous(&self) -> u64 {
        self.old
    }
}

impl Drop for ConntrackMaxGuard {
    fn drop(&mut self) {
        if !self.active {
            return;
        }
        let (pid, min) = (std::process::id(), self.min);
        let _ = with_max_state(|st| {
            if let Some(i) = st.holders.iter().position(|&h| h == (pid, min)) {
                st.holders.remove(i);
            }
            let target = if st.holders.is_empty() {
                st.original.take()
            } else {
                st.target()
            };
            if let Some(t) = target {
                write_max(t)?;
            }
            Ok(())
        });
    }
}

/// The guards' coordination at one moment, read under their lock: the
/// kernel's value, the original the first live guard recorded, and each
/// live guard's process and minimum. Guards of other processes (a
/// benchmark that raised the max) show here, so a caller can tell their
/// effect from its own.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MaxCoordination {
    /// `nf_conntrack_max` now.
    pub value: u64,
    /// The value before the first live guard (`None`: no guard lives).
    pub original: Option<u64>,
    /// `(pid, minimum)` of every live guard.
    pub holders: Vec<(u32, u64)>,
}

impl MaxCoordination {
    /// The value the guards keep: the original raised to the largest live
    /// minimum (`None`: no guard lives, nothing is kept).
    pub fn target(&self) -> Option<u64> {
        MaxState {
            original: self.original,
            holders: self.holders.clone(),
        }
        .target()
    }

    /// The minimums of this process's live guards, in ascending order.
    pub fn mine(&self) -> Vec<u64> {
        let me = std::process::id();
        let mut v: Vec<u64> = self
            .holders
            .iter()
            .filter(|h| h.0 == me)
            .map(|h| h.1)
            .collect();
        v.sort_unstable();
        v
    }
}

impl ConntrackMaxGuard {
    /// The coordination state and the kernel's value, read together under
    /// the guards' lock (holders of dead processes pruned, as a new guard
    /// would).
    pub fn coordination() -> io::Result<MaxCoordination> {
        with_max_state(|st| {
            Ok(MaxCoordination {
                value: read_max()?,
                original: st.original,
                holders: st.holders.clone(),
            })
        })
    }
}

/// The global `nf_conntrack_max` of the running kernel (0: unlimited), as
/// [`HostFs::read_max`] reads it from `/`.
pub fn read_max() -> io::Result<u64> {
    HostFs::new("/")
        .read_max()
        .map(u64::from)
        .map_err(io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_skips_junk() {
        let st = MaxState {
            original: Some(262_144),
            holders: vec![(10, 300_000), (11, 1_200_000)],
        };
        assert_eq!(MaxState::parse(&st.render()), st);
        let junk = "original x\nholder 1\nholder a 2\nwhat 1 2 3\nholder 7 9\n";
        assert_eq!(
            MaxState::parse(junk),
            MaxState {
                original: None,
                holders: vec![(7, 9)]
            }
        );
    }

    #[test]
    fn target_is_the_largest_live_minimum_never_below_the_original() {
        let mut st = MaxState::default();
        assert_eq!(st.target(), None);
        st.original = Some(1000);
        assert_eq!(st.target(), Some(1000));
        st.holders = vec![(1, 500), (2, 3000), (3, 2000)];
        assert_eq!(st.target(), Some(3000));
    }
}
