//! What to look at: this host, another network namespace, a process's
//! namespace, a capture directory, or the bundled sample incident.

use super::{Failure, sample};
use std::path::{Path, PathBuf};

/// Source selection options, shared by the examples (flatten into a clap
/// parser with `#[command(flatten)]`).
#[derive(Debug, Clone, clap::Args)]
pub struct SourceArgs {
    /// Look at the network namespace NAME (made by `ip netns add`,
    /// /var/run/netns/NAME) instead of this host's. Needs root.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["pid", "capture", "sample"])]
    pub netns: Option<String>,

    /// Look at the network namespace of process PID (a container's, for
    /// example). Needs root.
    #[arg(long, value_name = "PID", conflicts_with_all = ["capture", "sample"])]
    pub pid: Option<u32>,

    /// Analyse files saved on another host instead of a live table (layout
    /// in examples/data/README.md).
    #[arg(long, value_name = "DIR", conflicts_with = "sample")]
    pub capture: Option<PathBuf>,

    /// Analyse the bundled sample incident (synthetic data, clearly
    /// labelled) instead of this host; the exit code is then the
    /// sample's.
    #[arg(long)]
    pub sample: bool,

    /// Seconds between the two statistics samples that give counter rates
    /// (live only; 0: no rates, counters since boot only).
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    pub window: f64,
}

/// The thing analysed.
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
    /// Whether the target is a live kernel table.
    pub fn is_live(&self) -> bool {
        matches!(self, Target::Host | Target::Netns(_) | Target::Pid(_))
    }

    /// A short description for reports.
    pub fn describe(&self) -> String {
        match self {
            Target::Host => "this host".into(),
            Target::Netns(n) => format!("network namespace {n}"),
            Target::Pid(p) => format!("network namespace of pid {p}"),
            Target::Capture(d) => format!("capture {}", d.display()),
            Target::Sample => "SAMPLE INCIDENT (bundled, synthetic) — not this host".into(),
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
}

impl SourceArgs {
    /// The target the options select, checked to exist. A missing
    /// namespace, process or directory is [`Failure::NoTarget`]; a bad
    /// window is [`Failure::Usage`].
    pub fn target(&self) -> Result<Target, Failure> {
        if !(self.window.is_finite() && (0.0..=3600.0).contains(&self.window)) {
            return Err(Failure::Usage(format!(
                "--window {}: expected seconds between 0 and 3600",
                self.window
            )));
        }
        if let Some(name) = &self.netns {
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                return Err(Failure::Usage(format!(
                    "--netns {name:?}: not a namespace name (names made by `ip netns add` have no '/')"
                )));
            }
            let path = Path::new("/var/run/netns").join(name);
            if !path.exists() {
                return Err(Failure::NoTarget(format!(
                    "network namespace {name:?} does not exist (no {}; `ip netns list` shows the named namespaces)",
                    path.display()
                )));
            }
            return Ok(Target::Netns(name.clone()));
        }
        if let Some(pid) = self.pid {
            let path = PathBuf::from(format!("/proc/{pid}"));
            if pid == 0 || !path.exists() {
                return Err(Failure::NoTarget(format!(
                    "process {pid} does not exist (no {})",
                    path.display()
                )));
            }
            return Ok(Target::Pid(pid));
        }
        if let Some(dir) = &self.capture {
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
            return Ok(Target::Capture(dir.clone()));
        }
        if self.sample {
            return Ok(Target::Sample);
        }
        Ok(Target::Host)
    }

    /// The rate window.
    pub fn window(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.window)
    }
}
