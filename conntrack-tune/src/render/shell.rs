//! The POSIX shell script: applies the run-time actions (sysctls, buckets,
//! timeouts, RPS masks) and installs the persistence files, idempotently,
//! printing every value before and after, then runs the read-back
//! verifications and exits non-zero when one fails.
//!
//! Every interpolated value is single-quoted ([`sh_quote`]) and printed
//! with `printf '%s\n'`, never `echo`, so hostile values are reproduced
//! byte for byte and never interpreted. The script honours two variables:
//! `CONNTRACK_KIT_ROOT` (a prefix for every path, for tests and chroots)
//! and `CONNTRACK_KIT_DRY_RUN=1` (print what would change, change nothing).

use super::{RenderError, files, one_line, unsafe_value};
use crate::plan::{
    ActionKind, HASHSIZE_PARAM_PATH, KEY_BUCKETS, Plan, Verify, rps_path, sysctl_path,
};

/// Quotes a string for a POSIX shell: single quotes, with each `'` written
/// as `'\''`. Fails on NUL, which no shell word can hold.
///
/// ```
/// use conntrack_tune::render::sh_quote;
/// assert_eq!(sh_quote("eth0").unwrap(), "'eth0'");
/// assert_eq!(sh_quote("it's").unwrap(), r"'it'\''s'");
/// assert_eq!(sh_quote("").unwrap(), "''");
/// assert!(sh_quote("a\0b").is_err());
/// ```
pub fn sh_quote(s: &str) -> Result<String, RenderError> {
    if s.contains('\0') {
        return Err(unsafe_value("shell word", s));
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    Ok(out)
}

const PRELUDE: &str = r#"#!/bin/sh
# Written by conntrack-tune (conntrack-kit). Review before running.
#   CONNTRACK_KIT_ROOT=/path  prefix every path (tests, chroots)
#   CONNTRACK_KIT_DRY_RUN=1   print what would change, change nothing
set -eu
ROOT=${CONNTRACK_KIT_ROOT:-}
DRY=${CONNTRACK_KIT_DRY_RUN:-0}
FAILED=0

say() { printf '%s\n' "$1"; }

norm_mask() { printf '%s' "$1" | tr -d ', \n' | tr 'ABCDEF' 'abcdef' | sed 's/^0*//'; }

same() { # value wanted kind
  if [ "$3" = mask ]; then
    a=$(norm_mask "$1"); b=$(norm_mask "$2")
    [ "${a:-0}" = "${b:-0}" ]
  else
    [ "$1" = "$2" ]
  fi
}

apply() { # id path value kind
  p=$ROOT$2
  if [ ! -e "$p" ]; then
    say "$1: missing: $2"
    FAILED=1
    return 0
  fi
  before=$(cat -- "$p")
  say "$1: before: $2 = $before"
  if same "$before" "$3" "$4"; then
    say "$1: already: $2 = $3"
    return 0
  fi
  if [ "$DRY" = 1 ]; then
    say "$1: would write: $2 = $3"
    return 0
  fi
  printf '%s\n' "$3" > "$p"
  after=$(cat -- "$p")
  say "$1: after: $2 = $after"
}

verify() { # id path expected kind
  if [ "$DRY" = 1 ]; then
    say "$1: dry run, not verified: $2"
    return 0
  fi
  p=$ROOT$2
  if [ -e "$p" ] && same "$(cat -- "$p")" "$3" "$4"; then
    say "$1: verify ok: $2 = $3"
  else
    say "$1: verify FAILED: $2 != $3"
    FAILED=1
  fi
}

install_file() { # id path content
  p=$ROOT$2
  if [ -L "$p" ]; then
    say "$1: not replaced, a symlink (masked?): $2"
    FAILED=1
    return 0
  fi
  if [ -f "$p" ] && printf '%s' "$3" | cmp -s - "$p"; then
    say "$1: already installed: $2"
    return 0
  fi
  if [ "$DRY" = 1 ]; then
    say "$1: would install: $2"
    return 0
  fi
  mkdir -p -- "$(dirname -- "$p")"
  printf '%s' "$3" > "$p"
  say "$1: installed: $2"
}

"#;

fn q(s: &str) -> Result<String, RenderError> {
    sh_quote(s)
}

/// Renders the plan as a POSIX shell script.
///
/// ```
/// use conntrack_tune::{plan, Observation, Policy, render};
/// let s = render::shell_script(&plan(&Observation::default(), &Policy::default()).unwrap()).unwrap();
/// assert!(s.starts_with("#!/bin/sh\n"));
/// assert!(s.contains("set -eu"));
/// ```
pub fn shell_script(plan: &Plan) -> Result<String, RenderError> {
    let mut out = String::from(PRELUDE);
    let mut checks: Vec<(String, String, String, &'static str)> = Vec::new();
    for a in &plan.actions {
        let id = q(&a.id)?;
        out.push_str(&format!("# {} {}\n", a.priority, one_line(&a.title)));
        match &a.kind {
            ActionKind::SetSysctl { key, value } => {
                let path = sysctl_key_path(key)?;
                out.push_str(&format!("apply {id} {} {} plain\n", q(&path)?, q(value)?));
            }
            ActionKind::SetTimeout { key, seconds, .. } => {
                let path = sysctl_key_path(key)?;
                out.push_str(&format!(
                    "apply {id} {} {} plain\n",
                    q(&path)?,
                    q(&seconds.to_string())?
                ));
            }
            ActionKind::SetBuckets {
                buckets,
                via_sysctl,
            } => {
                let path = if *via_sysctl {
                    sysctl_path(KEY_BUCKETS)
                } else {
                    HASHSIZE_PARAM_PATH.to_string()
                };
                out.push_str(&format!(
                    "apply {id} {} {} plain\n",
                    q(&path)?,
                    q(&buckets.to_string())?
                ));
            }
            ActionKind::EnableRps { iface, queues } => {
                if !safe_ifname(iface) {
                    return Err(unsafe_value("interface name", iface));
                }
                for m in queues {
                    out.push_str(&format!(
                        "apply {id} {} {} mask\n",
                        q(&rps_path(iface, m.queue))?,
                        q(&m.mask)?
                    ));
                }
            }
            ActionKind::PersistSysctl { .. } => {
                if let Some(f) = files::sysctl_d(plan)? {
                    out.push_str(&format!(
                        "install_file {id} {} {}\n",
                        q(&f.path)?,
                        q(&f.content)?
                    ));
                }
            }
            ActionKind::ModprobeOption { .. } => {
                if let Some(f) = files::modprobe_d(plan)? {
                    out.push_str(&format!(
                        "install_file {id} {} {}\n",
                        q(&f.path)?,
                        q(&f.content)?
                    ));
                }
            }
            ActionKind::Notrack { .. }
            | ActionKind::UnloadHelper { .. }
            | ActionKind::KernelCmdline { .. }
            | ActionKind::Advice { .. } => {
                out.push_str(&format!(
                    "say {}\n",
                    q(&format!(
                        "{}: not applied by this script: {}",
                        a.id, a.title
                    ))?
                ));
            }
        }
        for v in &a.verify {
            if let Verify::ReadBack { path, expected } = v {
                let kind = if path.ends_with("/rps_cpus") {
                    "mask"
                } else {
                    "plain"
                };
                checks.push((id.clone(), q(path)?, q(expected)?, kind));
            }
        }
    }
    out.push_str("\n# Verification\n");
    for (id, path, expected, kind) in checks {
        out.push_str(&format!("verify {id} {path} {expected} {kind}\n"));
    }
    out.push_str("if [ \"$FAILED\" != 0 ]; then\n  say 'conntrack-kit: some steps failed'\n  exit 1\nfi\nsay 'conntrack-kit: done'\n");
    Ok(out)
}

/// An interface name that is safe as one path component: no `/`, not `.`
/// or `..`, no NUL. Other bytes (spaces, quotes, `$()`, newlines) are
/// quoted. The planner is stricter (`rps::valid_ifname`); the renderer only
/// refuses what quoting cannot make safe.
fn safe_ifname(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

fn sysctl_key_path(key: &str) -> Result<String, RenderError> {
    if !super::plain_key(key) {
        return Err(unsafe_value("sysctl key", key));
    }
    Ok(sysctl_path(key))
}
