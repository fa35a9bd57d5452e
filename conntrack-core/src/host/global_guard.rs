//! Changing the kernel's global conntrack sysctls for a while, and putting
//! them back: [`GlobalSysctlGuard`] (exclusive: it may set any of them to
//! any value) and [`GlobalSysctlShare`] (shared: the holder relies on them
//! not being changed under it).
//!
//! Some conntrack settings are one value for the whole kernel, whatever
//! the network namespace: `nf_conntrack_max` (compared with each
//! namespace's own count), `nf_conntrack_buckets` (one hash table for all
//! namespaces; writing it rehashes every entry) and `nf_log_all_netns`
//! (whether namespaces other than the initial one may log). Only the
//! initial namespace may write them. A test or lab that changes them
//! changes them for every other process on the host, so the holders
//! coordinate through one `flock` on [`GlobalSysctlGuard::LOCK_FILE`]:
//!
//! - [`GlobalSysctlShare`] takes it shared. [`super::max_guard::ConntrackMaxGuard`]
//!   takes a share for its life too, so raisers of the max run together
//!   but never while an exclusive holder has the values changed.
//! - [`GlobalSysctlGuard`] takes it exclusive, so it waits for every
//!   share and max guard, in this process and in others, to go. Each
//!   value it changes is first recorded, with its PID, in a journal
//!   ([`GlobalSysctlGuard::JOURNAL_FILE`]); dropping the guard writes the
//!   originals back (last change first) and removes the journal.
//! - A holder that died (a test killed mid-run) releases the lock with
//!   its process; the journal stays. The next guard or share to take the
//!   lock finds it and writes the originals back before anything else,
//!   so a crash does not leave a host with 512 buckets.
//!
//! Within one thread, do not take a share or a max guard while holding
//! the exclusive guard: the lock is per open file, so that would wait
//! for itself. Set the max through [`GlobalSysctlGuard::set`] instead.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use conntrack_core::host::global_guard::{GlobalSysctl, GlobalSysctlGuard, read_global};
//! let mut g = GlobalSysctlGuard::exclusive()?; // needs root; waits for other holders
//! let before = read_global(GlobalSysctl::Buckets)?;
//! g.set(GlobalSysctl::Buckets, 512)?;
//! // ... fill a table, watch chaintoolong rise ...
//! drop(g); // the bucket count is `before` again
//! assert_eq!(read_global(GlobalSysctl::Buckets)?, before);
//! # Ok(()) }
//! ```

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

/// A global conntrack sysctl a guard may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GlobalSysctl {
    /// `net.netfilter.nf_conntrack_max`: the limit each namespace's count
    /// is compared with (0: unlimited).
    Max,
    /// `net.netfilter.nf_conntrack_buckets`: the size of the one hash
    /// table of every namespace (writable in the initial namespace since
    /// 3183ab8997a4; a write rehashes every entry).
    Buckets,
    /// `net.netfilter.nf_log_all_netns`: whether packets of namespaces
    /// other than the initial one may be logged (`nf_conntrack_log_invalid`
    /// in a namespace shows nothing while it is 0).
    LogAllNetns,
}

impl GlobalSysctl {
    /// Every global sysctl a guard knows.
    pub const ALL: [GlobalSysctl; 3] = [
        GlobalSysctl::Max,
        GlobalSysctl::Buckets,
        GlobalSysctl::LogAllNetns,
    ];

    /// The sysctl's name (`net.netfilter.nf_conntrack_max`).
    pub const fn name(self) -> &'static str {
        match self {
            GlobalSysctl::Max => "net.netfilter.nf_conntrack_max",
            GlobalSysctl::Buckets => "net.netfilter.nf_conntrack_buckets",
            GlobalSysctl::LogAllNetns => "net.netfilter.nf_log_all_netns",
        }
    }

    /// Its file under `/proc/sys`.
    pub const fn path(self) -> &'static str {
        match self {
            GlobalSysctl::Max => "/proc/sys/net/netfilter/nf_conntrack_max",
            GlobalSysctl::Buckets => "/proc/sys/net/netfilter/nf_conntrack_buckets",
            GlobalSysctl::LogAllNetns => "/proc/sys/net/netfilter/nf_log_all_netns",
        }
    }

    fn from_name(s: &str) -> Option<GlobalSysctl> {
        GlobalSysctl::ALL.into_iter().find(|g| g.name() == s)
    }
}

impl fmt::Display for GlobalSysctl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The current value of a global sysctl (as this thread's namespace shows
/// it; the values are global, so every namespace shows the same).
pub fn read_global(key: GlobalSysctl) -> io::Result<u64> {
    let text = std::fs::read_to_string(key.path())?;
    text.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a number: {:?}", key.path(), text.trim()),
        )
    })
}

fn write_global(key: GlobalSysctl, value: u64) -> io::Result<()> {
    std::fs::write(key.path(), value.to_string())
        .map_err(|e| io::Error::new(e.kind(), format!("write {}={value}: {e}", key.name())))
}

/// One journal line: the value a key had before a guard changed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    pid: u32,
    key: GlobalSysctl,
    original: u64,
}

fn parse_journal(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|line| {
            let mut w = line.split_whitespace();
            let (pid, key, value) = (w.next()?, w.next()?, w.next()?);
            if w.next().is_some() {
                return None;
            }
            Some(Entry {
                pid: pid.parse().ok()?,
                key: GlobalSysctl::from_name(key)?,
                original: value.parse().ok()?,
            })
        })
        .collect()
}

fn render_journal(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| format!("{} {} {}\n", e.pid, e.key.name(), e.original))
        .collect()
}

fn state_dir() -> &'static Path {
    Path::new(super::max_guard::ConntrackMaxGuard::STATE_DIR)
}

fn open_lock() -> io::Result<File> {
    std::fs::create_dir_all(state_dir())?;
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state_dir().join(GlobalSysctlGuard::LOCK_FILE))
}

fn journal_path() -> PathBuf {
    state_dir().join(GlobalSysctlGuard::JOURNAL_FILE)
}

/// Writes back what a journal recorded, last change first, and removes it.
/// Call with the lock held exclusively.
fn replay_journal() -> io::Result<Vec<(GlobalSysctl, u64)>> {
    let path = journal_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let entries = parse_journal(&text);
    let mut restored = Vec::new();
    for e in entries.iter().rev() {
        // The first record of a key is its original; later ones (none
        // are written, but a hand-edited file may have them) yield to it.
        if entries.iter().find(|x| x.key == e.key) == Some(e) {
            write_global(e.key, e.original)?;
            restored.push((e.key, e.original));
        }
    }
    std::fs::remove_file(&path)?;
    Ok(restored)
}

/// Exclusive permission to change the global conntrack sysctls; every
/// change is undone on drop (see the [module documentation](self)).
#[derive(Debug)]
pub struct GlobalSysctlGuard {
    lock: File,
    changes: Vec<Entry>,
    recovered: Vec<(GlobalSysctl, u64)>,
}

impl GlobalSysctlGuard {
    /// The lock file in [`super::max_guard::ConntrackMaxGuard::STATE_DIR`].
    pub const LOCK_FILE: &'static str = "globals.lock";
    /// The journal of changed values, next to the lock file.
    pub const JOURNAL_FILE: &'static str = "globals.journal";

    /// Waits until no other guard, share or max guard is held, in any
    /// process, then takes the lock. Values a dead holder left changed are
    /// written back first ([`GlobalSysctlGuard::recovered`] says which).
    pub fn exclusive() -> io::Result<GlobalSysctlGuard> {
        let lock = open_lock()?;
        lock.lock()?;
        let recovered = replay_journal()?;
        Ok(GlobalSysctlGuard {
            lock,
            changes: Vec::new(),
            recovered,
        })
    }

    /// What a holder that died had left changed, and was put back when
    /// this guard took the lock.
    pub fn recovered(&self) -> &[(GlobalSysctl, u64)] {
        &self.recovered
    }

    /// Sets `key` to `value`, recording the value it had before (once per
    /// key) so that drop, or the next holder after a crash, restores it.
    /// The kernel may round the value it keeps (buckets: up to a multiple
    /// of a page's worth of bucket heads); [`read_global`] tells.
    pub fn set(&mut self, key: GlobalSysctl, value: u64) -> io::Result<()> {
        if !self.changes.iter().any(|e| e.key == key) {
            let original = read_global(key)?;
            self.changes.push(Entry {
                pid: std::process::id(),
                key,
                original,
            });
            std::fs::write(journal_path(), render_journal(&self.changes))?;
        }
        write_global(key, value)
    }

    /// The value `key` had before this guard changed it, if it did.
    pub fn original(&self, key: GlobalSysctl) -> Option<u64> {
        self.changes
            .iter()
            .find(|e| e.key == key)
            .map(|e| e.original)
    }

    /// Writes every original back now (last change first) and removes the
    /// journal; the guard keeps the lock until dropped. Idempotent.
    pub fn restore(&mut self) -> io::Result<()> {
        let mut first_err = None;
        while let Some(e) = self.changes.pop() {
            if let Err(err) = write_global(e.key, e.original) {
                first_err.get_or_insert(err);
            }
        }
        match std::fs::remove_file(journal_path()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Drop for GlobalSysctlGuard {
    fn drop(&mut self) {
        let _ = self.restore();
        let _ = self.lock.unlock();
    }
}

/// A shared hold on the global conntrack sysctls: no [`GlobalSysctlGuard`]
/// can change them while it lives. For work whose results depend on the
/// host's values (a lab scenario that fills a table to the current max).
#[derive(Debug)]
pub struct GlobalSysctlShare {
    lock: File,
}

impl GlobalSysctlShare {
    /// Waits until no exclusive guard is held, then takes a share. Values
    /// a dead exclusive holder left changed are written back first.
    pub fn acquire() -> io::Result<GlobalSysctlShare> {
        loop {
            let lock = open_lock()?;
            lock.lock_shared()?;
            if !journal_path().exists() {
                return Ok(GlobalSysctlShare { lock });
            }
            // An exclusive holder died with values changed: restore them
            // under the exclusive lock, then take the share again.
            lock.unlock()?;
            lock.lock()?;
            replay_journal()?;
            lock.unlock()?;
        }
    }
}

impl Drop for GlobalSysctlShare {
    fn drop(&mut self) {
        let _ = self.lock.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_round_trips_and_skips_junk() {
        let e = vec![
            Entry {
                pid: 7,
                key: GlobalSysctl::Buckets,
                original: 262_144,
            },
            Entry {
                pid: 7,
                key: GlobalSysctl::LogAllNetns,
                original: 0,
            },
        ];
        assert_eq!(parse_journal(&render_journal(&e)), e);
        let junk = "7 net.netfilter.nf_conntrack_max\nx net.netfilter.nf_conntrack_max 1\n\
                    7 net.netfilter.nope 1\n7 net.netfilter.nf_conntrack_max 9 extra\n\
                    8 net.netfilter.nf_conntrack_max 65536\n";
        assert_eq!(
            parse_journal(junk),
            vec![Entry {
                pid: 8,
                key: GlobalSysctl::Max,
                original: 65_536
            }]
        );
    }

    #[test]
    fn names_and_paths_agree() {
        for g in GlobalSysctl::ALL {
            let tail = g.name().trim_start_matches("net.netfilter.");
            assert!(g.path().ends_with(tail), "{g}");
            assert_eq!(GlobalSysctl::from_name(g.name()), Some(g));
        }
    }
}
