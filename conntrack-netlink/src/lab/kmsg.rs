//! [`KernelLog`]: the kernel log records written after a point in time,
//! read from `/dev/kmsg` (root, or `dmesg_restrict=0`).
//!
//! Conntrack writes there when a table is full (`nf_conntrack: table
//! full, dropping packet`, rate-limited, in `__nf_conntrack_alloc`) and,
//! with `nf_conntrack_log_invalid` set in a namespace, the reason for each
//! invalid packet (`nf_ct_proto_6: SEQ is over upper bound ...`). The log
//! is the host's, shared by every namespace.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;

/// A reader of the kernel log from the moment it was opened.
#[derive(Debug)]
pub struct KernelLog {
    file: File,
    lines: Vec<String>,
}

impl KernelLog {
    /// Opens `/dev/kmsg` positioned after its last record: only records
    /// written from now on are read.
    pub fn open() -> io::Result<KernelLog> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")?;
        file.seek(SeekFrom::End(0))?;
        Ok(KernelLog {
            file,
            lines: Vec::new(),
        })
    }

    /// Reads the records written since the last call and returns every
    /// message read so far (the text after the record's `;`).
    pub fn lines(&mut self) -> &[String] {
        let mut buf = vec![0u8; 8192];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Some(msg) = parse_record(&buf[..n]) {
                        self.lines.push(msg);
                    }
                }
                // EPIPE: records were overwritten before being read; the
                // next read continues with the oldest one left.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        &self.lines
    }

    /// The messages read so far that contain `needle`.
    pub fn matching(&mut self, needle: &str) -> Vec<String> {
        self.lines()
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }
}

/// The message of one `/dev/kmsg` record (`PRIO,SEQ,TIME,FLAGS;MESSAGE`
/// and continuation lines), without its prefix.
pub fn parse_record(rec: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(rec);
    let first = text.lines().next()?;
    let (_, msg) = first.split_once(';')?;
    Some(msg.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_prefix_is_cut() {
        assert_eq!(
            parse_record(b"4,1234,5678901,-;nf_conntrack: table full, dropping packet\n")
                .as_deref(),
            Some("nf_conntrack: table full, dropping packet")
        );
        assert_eq!(
            parse_record(b"6,1,2,-;nf_ct_proto_6: invalid new IN=c0 OUT= \n SUBSYSTEM=net\n")
                .as_deref(),
            Some("nf_ct_proto_6: invalid new IN=c0 OUT= ")
        );
        assert_eq!(parse_record(b"garbage"), None);
    }
}
