//! A directory tree packed into one byte string, for the targets that read
//! files (the capture loader, the host reader): header lines
//! `==> PATH <==`, each followed by the file's bytes, the way `head` prints
//! several files. `seed.sh` packs the fixture trees this way.
//!
//! Three more header forms build what a hostile tree holds:
//!
//! - `==> PATH/ <==`: a directory (where a file may be expected);
//! - `==> PATH -> TARGET <==`: a symbolic link. TARGET stays inside the
//!   tree (`..` and leading `/` are dropped), so links can dangle or loop
//!   but never leave it, except the one outside target kept as is:
//!   `/dev/null` (a masked sysctl.d file);
//! - `==> PATH | <==`: a FIFO (a reader that opens it without care blocks
//!   forever, which libFuzzer reports as a timeout).
//!
//! Paths are relative to the root: empty, `.` and `..` components are
//! dropped. At most [`MAX_ENTRIES`] entries are made; an entry whose path
//! already exists (or cannot be made) is skipped, so a FIFO is never opened
//! here.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Entries made at most.
pub const MAX_ENTRIES: usize = 64;
/// Path components kept at most.
const MAX_DEPTH: usize = 12;

/// What one header asks for.
enum Kind<'a> {
    File(&'a [u8]),
    Dir,
    Symlink(PathBuf),
    Fifo,
}

/// `PATH` as a relative path inside the tree, or `None` when nothing is
/// left of it.
fn relative(path: &[u8]) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    let mut n = 0;
    for c in path.split(|&b| b == b'/') {
        if c.is_empty() || c == b"." || c == b".." {
            continue;
        }
        n += 1;
        if n > MAX_DEPTH {
            break;
        }
        out.push(OsStr::from_bytes(c));
    }
    (n > 0).then_some(out)
}

fn strip_suffix<'a>(s: &'a [u8], suffix: &[u8]) -> Option<&'a [u8]> {
    s.strip_suffix(suffix)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The header of a line, if it is one: the path and what to make.
fn header(line: &[u8]) -> Option<(&[u8], Kind<'static>)> {
    let inner = line.strip_prefix(b"==> ")?.strip_suffix(b" <==")?;
    if let Some(p) = strip_suffix(inner, b" |") {
        return Some((p, Kind::Fifo));
    }
    if let Some(i) = find(inner, b" -> ") {
        let target = &inner[i + 4..];
        let target = if target == b"/dev/null" {
            PathBuf::from("/dev/null")
        } else {
            relative(target)?
        };
        return Some((&inner[..i], Kind::Symlink(target)));
    }
    if let Some(p) = strip_suffix(inner, b"/") {
        return Some((p, Kind::Dir));
    }
    Some((inner, Kind::File(&[])))
}

/// Splits packed bytes into entries: (path, what to make). The bytes of a
/// file run from after its header line up to the next header line (the
/// newline before it included).
fn entries(data: &[u8]) -> Vec<(&[u8], Kind<'_>)> {
    let mut out: Vec<(&[u8], Kind<'_>)> = Vec::new();
    // (index in `out`, start of the file's bytes)
    let mut open: Option<(usize, usize)> = None;
    let mut pos = 0;
    while pos < data.len() {
        let end = data[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(data.len(), |i| pos + i);
        if let Some((path, kind)) = header(&data[pos..end]) {
            if let Some((i, start)) = open.take() {
                out[i].1 = Kind::File(&data[start..pos]);
            }
            if matches!(kind, Kind::File(_)) {
                open = Some((out.len(), (end + 1).min(data.len())));
            }
            out.push((path, kind));
        }
        pos = end + 1;
    }
    if let Some((i, start)) = open {
        out[i].1 = Kind::File(&data[start..]);
    }
    out
}

fn mkfifo(path: &Path) -> bool {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).is_ok()
}

/// Makes the entries packed in `data` under `root` (an existing, empty
/// directory). Returns how many were made.
pub fn unpack(data: &[u8], root: &Path) -> usize {
    let mut made = 0;
    for (path, kind) in entries(data).into_iter().take(MAX_ENTRIES) {
        let Some(rel) = relative(path) else { continue };
        let p = root.join(rel);
        // Never write through, or over, anything that exists: it may be a
        // FIFO made by an earlier entry.
        if std::fs::symlink_metadata(&p).is_ok() {
            continue;
        }
        if let Some(parent) = p.parent()
            && std::fs::create_dir_all(parent).is_err()
        {
            continue;
        }
        let ok = match kind {
            Kind::File(bytes) => std::fs::File::create_new(&p)
                .and_then(|mut f| std::io::Write::write_all(&mut f, bytes))
                .is_ok(),
            Kind::Dir => std::fs::create_dir(&p).is_ok(),
            Kind::Symlink(target) => std::os::unix::fs::symlink(target, &p).is_ok(),
            Kind::Fifo => mkfifo(&p),
        };
        made += usize::from(ok);
    }
    made
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpacks_files_dirs_links_and_fifos() {
        let t = tempfile::tempdir().unwrap();
        let data = b"ignored preamble\n\
            ==> stats.txt <==\n@ 0\nentries\n\
            ==> ../../etc/./sysctl.d/a.conf <==\nx = 1\n\
            ==> proc/ <==\n\
            ==> loop -> loop <==\n\
            ==> up -> ../../../../dev/zero <==\n\
            ==> masked -> /dev/null <==\n\
            ==> fifo | <==\n\
            ==> stats.txt <==\nsecond copy: skipped\n\
            ==> last <==\nno newline";
        assert_eq!(unpack(data, t.path()), 8);
        let r = t.path();
        assert_eq!(
            std::fs::read(r.join("stats.txt")).unwrap(),
            b"@ 0\nentries\n"
        );
        assert_eq!(
            std::fs::read(r.join("etc/sysctl.d/a.conf")).unwrap(),
            b"x = 1\n"
        );
        assert!(r.join("proc").is_dir());
        assert_eq!(
            std::fs::read_link(r.join("loop")).unwrap(),
            Path::new("loop")
        );
        assert_eq!(
            std::fs::read_link(r.join("up")).unwrap(),
            Path::new("dev/zero")
        );
        assert_eq!(
            std::fs::read_link(r.join("masked")).unwrap(),
            Path::new("/dev/null")
        );
        use std::os::unix::fs::FileTypeExt;
        assert!(
            std::fs::symlink_metadata(r.join("fifo"))
                .unwrap()
                .file_type()
                .is_fifo()
        );
        assert_eq!(std::fs::read(r.join("last")).unwrap(), b"no newline");
    }
}
