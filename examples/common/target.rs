//! What an example looks at, for every example: this host, another
//! network namespace (`--netns NAME`), a process's namespace
//! (`--pid PID`), and, for the examples that read captures, a capture
//! directory (`--capture DIR`) or the bundled sample incident
//! (`--sample`). One type, [`Target`], checked to exist when it is
//! resolved.

use super::exit::{Failure, PRIVILEGES_HINT};
use super::sample;
#[cfg(feature = "analyze")]
use conntrack_kit::ct_core::host::HostFs;
#[cfg(feature = "analyze")]
use conntrack_kit::live::LiveTarget;
use conntrack_kit::netlink::Netns;
use std::path::{Path, PathBuf};

/// `--netns NAME` and `--pid PID`: flatten into an example's clap parser
/// with `#[command(flatten)]`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NetnsArgs {
    /// Look at the network namespace NAME made by `ip netns add NAME`
    /// (/var/run/netns/NAME) instead of this host's. Needs root.
    #[arg(long, value_name = "NAME", conflicts_with = "pid")]
    pub netns: Option<String>,

    /// Look at the network namespace of process PID (/proc/PID/ns/net; a
    /// container's, for example). Needs root.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
}

/// `--capture DIR` and `--sample`, for the examples that read captures;
/// flattened next to [`NetnsArgs`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CaptureArgs {
    /// Analyse files saved on another host instead of a live table (layout
    /// in examples/data/README.md; examples/data/capture.sh makes one).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["netns", "pid", "sample"])]
    pub capture: Option<PathBuf>,

    /// Analyse the bundled sample incident (synthetic data, clearly
    /// labelled) instead of this host; the exit code then judges the
    /// sample.
    #[arg(long, conflicts_with_all = ["netns", "pid"])]
    pub sample: bool,
}

/// The thing looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// This host's (the caller's) network namespace.
    Host,
    /// A named network namespace.
    Netns(String),
    /// The network namespace of a process.
    Pid(u32),
    /// A capture directory.
    Capture(PathBuf),
    /// The bundled sample incident.
    Sample,
}

impl Target {
    /// The target `--netns`/`--pid` (and, when given, `--capture`/
    /// `--sample`) select, checked to exist: a malformed name is
    /// [`Failure::Usage`], a missing namespace, process or directory
    /// [`Failure::NoTarget`], a process whose namespace this user may not
    /// see [`Failure::Unavailable`].
    pub fn resolve(ns: &NetnsArgs, capture: Option<&CaptureArgs>) -> Result<Target, Failure> {
        if let Some(name) = &ns.netns {
            return Target::netns_named(name);
        }
        if let Some(pid) = ns.pid {
            return Target::process(pid);
        }
        if let Some(c) = capture {
            if let Some(dir) = &c.capture {
                return Target::capture(dir);
            }
            if c.sample {
                return Ok(Target::Sample);
            }
        }
        Ok(Target::Host)
    }

    /// The named namespace `--netns NAME` selects, checked as
    /// [`Target::resolve`] does.
    pub fn netns_named(name: &str) -> Result<Target, Failure> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(Failure::Usage(format!(
                "--netns {name:?}: not a namespace name (names made by `ip netns add` have no '/'; \
                 --pid PID names a process's namespace)"
            )));
        }
        let path = Netns::named(name)
            .path()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        if !path.exists() {
            return Err(Failure::NoTarget(format!(
                "network namespace {name:?} does not exist (no {}; `ip netns list` shows the \
                 named namespaces)",
                path.display()
            )));
        }
        Ok(Target::Netns(name.to_string()))
    }

    fn process(pid: u32) -> Result<Target, Failure> {
        let dir = PathBuf::from(format!("/proc/{pid}"));
        if pid == 0 || !dir.exists() {
            return Err(Failure::NoTarget(format!(
                "process {pid} does not exist (no {})",
                dir.display()
            )));
        }
        let link = dir.join("ns/net");
        match std::fs::symlink_metadata(&link) {
            Ok(_) => Ok(Target::Pid(pid)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Failure::NoTarget(format!(
                "process {pid} does not exist any more (no {})",
                link.display()
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                Err(Failure::Unavailable(format!(
                    "no privileges to see the network namespace of process {pid}: {}: {e}\n\
                     {PRIVILEGES_HINT}",
                    link.display()
                )))
            }
            Err(e) => Err(Failure::Error(format!("{}: {e}", link.display()))),
        }
    }

    fn capture(dir: &Path) -> Result<Target, Failure> {
        if !dir.is_dir() {
            return Err(Failure::NoTarget(format!(
                "capture directory {} does not exist or is not a directory",
                dir.display()
            )));
        }
        // The bundled sample keeps its label however it is named.
        let canon = |p: &Path| p.canonicalize().ok();
        if canon(dir).is_some() && canon(dir) == sample::dir().and_then(canon) {
            return Ok(Target::Sample);
        }
        Ok(Target::Capture(dir.to_path_buf()))
    }

    /// Whether the target is a live kernel table.
    pub fn is_live(&self) -> bool {
        matches!(self, Target::Host | Target::Netns(_) | Target::Pid(_))
    }

    /// The namespace of a live target ([`Netns::Current`] for this host,
    /// and for captures, which have none).
    pub fn netns(&self) -> Netns {
        match self {
            Target::Netns(n) => Netns::named(n),
            Target::Pid(p) => Netns::pid(*p),
            _ => Netns::Current,
        }
    }

    /// A description for reports (the JSON report's `origin.label`).
    pub fn describe(&self) -> String {
        match self {
            Target::Host => "this host".into(),
            Target::Netns(n) => format!("network namespace {n}"),
            Target::Pid(p) => format!("network namespace of pid {p}"),
            Target::Capture(d) => format!("capture {}", d.display()),
            Target::Sample => "SAMPLE INCIDENT (bundled, synthetic) — not this host".into(),
        }
    }

    /// A short name for one-line headers: `this host`, `netns NAME`,
    /// `netns of pid PID`, `capture DIR`, `sample incident`.
    pub fn short(&self) -> String {
        match self {
            Target::Host => "this host".into(),
            Target::Netns(n) => format!("netns {n}"),
            Target::Pid(p) => format!("netns of pid {p}"),
            Target::Capture(d) => format!("capture {}", d.display()),
            Target::Sample => "sample incident".into(),
        }
    }

    /// The capture directory a target reads, if any.
    pub fn capture_dir(&self) -> Option<&Path> {
        match self {
            Target::Capture(d) => Some(d),
            // Without the checkout nor a writable temporary directory, a
            // path that does not exist: collecting it says so.
            Target::Sample => Some(sample::dir().unwrap_or(Path::new(sample::CHECKOUT_DIR))),
            _ => None,
        }
    }

    /// The library's live target (`None` for a capture or the sample).
    #[cfg(feature = "analyze")]
    pub fn live(&self) -> Option<LiveTarget> {
        match self {
            Target::Host => Some(LiveTarget::Host),
            Target::Netns(_) => Some(LiveTarget::Namespace(self.netns())),
            Target::Pid(p) => Some(LiveTarget::Process(*p)),
            Target::Capture(_) | Target::Sample => None,
        }
    }

    /// Runs `read` with the target namespace's `/proc/net` files
    /// ([`LiveTarget::with_net_files`]; this host's for a capture).
    #[cfg(feature = "analyze")]
    pub fn with_net_files<T: Send>(
        &self,
        read: impl FnOnce(&HostFs) -> T + Send,
    ) -> Result<T, conntrack_kit::netlink::Error> {
        self.live().unwrap_or(LiveTarget::Host).with_net_files(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(netns: Option<&str>, pid: Option<u32>) -> NetnsArgs {
        NetnsArgs {
            netns: netns.map(str::to_string),
            pid,
        }
    }

    #[test]
    fn resolves_and_checks_each_kind() {
        assert_eq!(
            Target::resolve(&ns(None, None), None).unwrap(),
            Target::Host
        );
        let me = std::process::id();
        assert_eq!(
            Target::resolve(&ns(None, Some(me)), None).unwrap(),
            Target::Pid(me)
        );
        for bad in ["", "a/b", ".", ".."] {
            let e = Target::resolve(&ns(Some(bad), None), None).unwrap_err();
            assert!(matches!(e, Failure::Usage(_)), "{bad:?}: {e}");
        }
        let e = Target::resolve(&ns(Some("ck-unit-no-such-ns"), None), None).unwrap_err();
        assert!(matches!(e, Failure::NoTarget(_)), "{e}");
        assert!(e.to_string().contains("ip netns list"), "{e}");
        for pid in [0, 4_000_000_000] {
            let e = Target::resolve(&ns(None, Some(pid)), None).unwrap_err();
            assert!(matches!(e, Failure::NoTarget(_)), "{e}");
        }
        let cap = CaptureArgs {
            capture: Some("/nonexistent/capture".into()),
            sample: false,
        };
        let e = Target::resolve(&ns(None, None), Some(&cap)).unwrap_err();
        assert!(matches!(e, Failure::NoTarget(_)), "{e}");
        let sample = CaptureArgs {
            capture: None,
            sample: true,
        };
        assert_eq!(
            Target::resolve(&ns(None, None), Some(&sample)).unwrap(),
            Target::Sample
        );
    }

    #[test]
    fn names_for_reports_and_headers() {
        assert_eq!(
            Target::Netns("blue".into()).describe(),
            "network namespace blue"
        );
        assert_eq!(Target::Netns("blue".into()).short(), "netns blue");
        assert_eq!(Target::Pid(42).describe(), "network namespace of pid 42");
        assert_eq!(Target::Pid(42).short(), "netns of pid 42");
        assert_eq!(Target::Host.short(), "this host");
        assert!(Target::Pid(42).is_live() && !Target::Sample.is_live());
        assert_eq!(Target::Pid(42).netns(), Netns::pid(42));
    }
}
