//! `--trace SECONDS` of the analysing examples: the drop tracer on the
//! live target for the window (`conntrack_kit::traced`), its summary added
//! to the observation as evidence, or a note saying plainly why tracing
//! was unavailable.

use super::Failure;
use super::analysis::Collected;
use super::target::Target;
use conntrack_kit::traced::TraceWindow;
use std::time::Duration;

/// A started trace, or why there is none.
#[derive(Debug)]
pub enum Pending {
    /// Collecting.
    Running(TraceWindow, u64),
    /// Unavailable here; the note says why.
    Unavailable(String),
}

/// Starts tracing `target` for `secs` (before the rest of the collection,
/// so that its window is traced).
pub fn start(target: &Target, secs: u64) -> Result<Pending, Failure> {
    if !target.is_live() {
        return Err(Failure::Usage(
            "--trace needs a live target (this host, --netns or --pid), not a capture".into(),
        ));
    }
    match TraceWindow::start(target.netns(), Duration::from_secs(secs)) {
        Ok(w) => Ok(Pending::Running(w, secs)),
        Err(e) if e.is_unavailable() => Ok(Pending::Unavailable(format!("drops not traced: {e}"))),
        Err(e) => Err(Failure::Error(format!("--trace: {e}"))),
    }
}

/// Waits for the window and adds the summary (or the note) to `c`.
pub fn finish(p: Pending, c: &mut Collected) -> Result<(), Failure> {
    match p {
        Pending::Unavailable(note) => c.notes.push(note),
        Pending::Running(w, secs) => {
            let live = c.target.live();
            let s = w
                .finish_owned(|| Some(conntrack_kit::live::owner_tables(live.as_ref()?).0?.sockets))
                .map_err(|e| Failure::Error(format!("--trace: {e}")))?;
            let n: u64 = s.groups.iter().map(|g| g.drops).sum();
            c.notes.push(format!(
                "drops traced for {secs} s: {n} attributed{}",
                if s.lost > 0 {
                    format!(", {} records lost (ring buffer full)", s.lost)
                } else {
                    String::new()
                }
            ));
            c.observation.drops = Some(s);
        }
    }
    Ok(())
}
