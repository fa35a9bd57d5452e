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
    ActionKind, HASHSIZE_PARAM_PATH, KEY_BUCKETS, KEY_MAX, Plan, Verify, rps_path, sysctl_path,
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
/// For a plan made in a non-initial network namespace
/// (`context.init_netns == Some(false)`) the script is meant to run inside
/// that namespace (`ip netns exec NAME sh plan.sh`, `nsenter
/// --net=/proc/PID/ns/net sh plan.sh`), where it writes the per-namespace
/// values and RPS masks. It writes no global value (max, buckets: read-only
/// outside the initial namespace since 5.13, commit 2671fa4dc010) and
/// installs no host file (`/etc/sysctl.d`, `/etc/modprobe.d`: `ip netns
/// exec` shares the host's file system, and those files configure the
/// initial namespace): it prints those steps for the host's administrator
/// instead, and does not verify them.
///
/// ```
/// use conntrack_analyze::{Facts, Observation};
/// use conntrack_tune::{plan, Policy, render};
/// let obs = Observation::default();
/// let s = render::shell_script(&plan(&Facts::derive(&obs), &[], &Policy::default()).unwrap()).unwrap();
/// assert!(s.starts_with("#!/bin/sh\n"));
/// assert!(s.contains("set -eu"));
/// ```
pub fn shell_script(plan: &Plan) -> Result<String, RenderError> {
    let mut out = String::from(PRELUDE);
    let other_netns = plan.context.init_netns == Some(false);
    if other_netns {
        out.push_str(
            "# This plan was made in a NON-INITIAL network namespace. Run this script\n\
             # inside that namespace (ip netns exec NAME sh THIS_SCRIPT, or nsenter\n\
             # --net=/proc/PID/ns/net sh THIS_SCRIPT): it writes that namespace's values.\n\
             # Global values and host files are printed for the host, not applied.\n\n",
        );
    }
    let mut checks: Vec<(String, String, String, &'static str)> = Vec::new();
    for a in &plan.actions {
        let id = q(&a.id)?;
        out.push_str(&format!("# {} {}\n", a.priority, one_line(&a.title)));
        if other_netns && host_only(a) {
            out.push_str(&format!(
                "say {}\n",
                q(&format!(
                    "{}: not applied here (the host's initial namespace or its files): {}",
                    a.id,
                    one_line(&host_hint(a))
                ))?
            ));
            continue;
        }
        match &a.kind {
            ActionKind::SetMax { max } => {
                let path = sysctl_key_path(KEY_MAX)?;
                out.push_str(&format!(
                    "apply {id} {} {} plain\n",
                    q(&path)?,
                    q(&max.to_string())?
                ));
            }
            ActionKind::SetTimeout { key, secs, .. } => {
                let path = sysctl_key_path(&key.sysctl())?;
                out.push_str(&format!(
                    "apply {id} {} {} plain\n",
                    q(&path)?,
                    q(&secs.to_string())?
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
            | ActionKind::FullyRandomNat { .. }
            | ActionKind::UnloadHelpers { .. }
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

/// Whether an action changes the host's initial namespace or installs a
/// host file, which a script run inside another namespace must not do.
fn host_only(a: &crate::plan::Action) -> bool {
    match &a.kind {
        ActionKind::SetMax { .. } => true,
        ActionKind::SetBuckets { .. }
        | ActionKind::PersistSysctl { .. }
        | ActionKind::ModprobeOption { .. } => true,
        _ => a.scope == crate::plan::Scope::HostInitNamespace,
    }
}

/// What the host's administrator runs instead, for [`host_only`] actions.
fn host_hint(a: &crate::plan::Action) -> String {
    match &a.kind {
        ActionKind::SetMax { max } => {
            format!("on the host: sysctl -w {KEY_MAX}={max}")
        }
        ActionKind::SetBuckets {
            buckets,
            via_sysctl: true,
        } => format!("on the host: sysctl -w {KEY_BUCKETS}={buckets}"),
        ActionKind::SetBuckets { buckets, .. } => {
            format!("on the host: echo {buckets} > {HASHSIZE_PARAM_PATH}")
        }
        ActionKind::PersistSysctl { file, entries } => {
            let kv: Vec<String> = entries.iter().map(|(k, v)| format!("{k} = {v}")).collect();
            format!("on the host, install {file} with {}", kv.join(", "))
        }
        ActionKind::ModprobeOption {
            file,
            module,
            option,
            value,
        } => format!("on the host, install {file} with options {module} {option}={value}"),
        _ => format!("on the host: {}", a.title),
    }
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
