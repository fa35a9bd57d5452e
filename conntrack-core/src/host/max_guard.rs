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
    /// The guard's minimum, or its ceiling for an [`ConntrackMaxGuard::at_most`] guard.
    min: u64,
    active: bool,
    /// An [`ConntrackMaxGuard::at_most`] guard.
    cap: bool,
}

/// The coordination state: the value before the first live guard, and one
/// `(pid, minimum)` per live guard.
#[derive(Debug, Default, PartialEq, Eq)]
struct MaxState {
    original: Option<u64>,
    holders: Vec<(u32, u64)>,
    /// `(pid, maximum)` per live [`ConntrackMaxGuard::at_most`] guard.
    caps: Vec<(u32, u64)>,
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
                (Some("cap"), Some(pid), Some(max)) => {
                    if let (Ok(pid), Ok(max)) = (pid.parse(), max.parse()) {
                        st.caps.push((pid, max));
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
        for (pid, max) in &self.caps {
            out.push_str(&format!("cap {pid} {max}\n"));
        }
        out
    }

    /// The value the sysctl should have: the original, raised to the
    /// largest minimum of the holders, then lowered to the smallest cap
    /// (0, unlimited, counts as above every cap).
    fn target(&self) -> Option<u64> {
        let o = self.original?;
        let raised = self.holders.iter().map(|h| h.1).fold(o, u64::max);
        Some(match self.caps.iter().map(|c| c.1).min() {
            Some(cap) if raised == 0 || cap < raised => cap,
            _ => raised,
        })
    }

    fn is_empty(&self) -> bool {
        self.holders.is_empty() && self.caps.is_empty()
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
    let alive = |(pid, _): &(u32, u64)| Path::new(&format!("/proc/{pid}")).exists();
    st.holders.retain(alive);
    st.caps.retain(alive);
    let r = f(&mut st)?;
    if st.is_empty() {
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
        Self::register(min, false)
    }

    /// Lowers `nf_conntrack_max` to `max` (for tests that fill a table to
    /// its limit: the value is global, so hold it briefly); restored like
    /// [`ConntrackMaxGuard::at_least`]. While a cap is held it wins over
    /// raising guards.
    pub fn at_most(max: u64) -> io::Result<ConntrackMaxGuard> {
        Self::register(max, true)
    }

    fn register(min: u64, cap: bool) -> io::Result<ConntrackMaxGuard> {
        with_max_state(|st| {
            let mut current = read_max()?;
            if st.is_empty() {
                // No live guard: a value left changed by a run that died
                // holding a guard is put back before this guard records
                // the original.
                if let Some(o) = st.original.filter(|&o| o != current) {
                    write_max(o)?;
                    current = o;
                }
                st.original = Some(current);
            }
            let old = st.original.unwrap_or(current);
            if old == 0 && !cap {
                // Unlimited: nothing to raise, nothing to restore.
                return Ok(ConntrackMaxGuard {
                    old,
                    min,
                    active: false,
                    cap,
                });
            }
            if cap {
                st.caps.push((std::process::id(), min));
            } else {
                st.holders.push((std::process::id(), min));
            }
            let target = st.target().unwrap_or(current);
            if target != read_max()? {
                write_max(target)?;
            }
            Ok(ConntrackMaxGuard {
                old,
                min,
                active: true,
                cap,
            })
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
        let (pid, min, cap) = (std::process::id(), self.min, self.cap);
        let _ = with_max_state(|st| {
            let list = if cap { &mut st.caps } else { &mut st.holders };
            if let Some(i) = list.iter().position(|&h| h == (pid, min)) {
                list.remove(i);
            }
            let target = if st.is_empty() {
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
            caps: vec![(12, 40)],
        };
        assert_eq!(MaxState::parse(&st.render()), st);
        let junk = "original x\nholder 1\nholder a 2\nwhat 1 2 3\nholder 7 9\n";
        assert_eq!(
            MaxState::parse(junk),
            MaxState {
                original: None,
                holders: vec![(7, 9)],
                caps: vec![],
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

    #[test]
    fn a_cap_wins_over_raising_guards_and_over_unlimited() {
        let mut st = MaxState {
            original: Some(1000),
            holders: vec![(1, 3000)],
            caps: vec![(2, 40), (3, 60)],
        };
        assert_eq!(st.target(), Some(40));
        st.caps.clear();
        assert_eq!(st.target(), Some(3000));
        st.original = Some(0);
        st.holders.clear();
        st.caps = vec![(2, 40)];
        assert_eq!(st.target(), Some(40));
    }
}
