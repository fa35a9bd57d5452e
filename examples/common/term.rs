//! The terminal side of the refreshing examples (`watch`, `top`):
//!
//! - [`Screen`]: frames redrawn in place when standard output is a
//!   terminal (appended as plain text otherwise), lines cut to the
//!   terminal's width instead of wrapping, colour only on a terminal and
//!   never when `NO_COLOR` is set to a non-empty value
//!   (<https://no-color.org>; `--color always` overrides it, as a
//!   command-line flag should), and control characters from the data
//!   (a process name, say) replaced so that they cannot drive the
//!   terminal.
//! - [`Keys`]: when standard input is a terminal, raw mode (crossterm)
//!   and a thread that reads keys, so that `q` and Ctrl-C quit; the
//!   terminal's mode is restored when the value is dropped, on panic,
//!   and on SIGTERM, SIGHUP and SIGINT (which then end the loop instead
//!   of the process).

use crossterm::event::{Event, KeyCode, KeyEventKind, KeyModifiers};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorArg {
    /// Colour when standard output is a terminal and NO_COLOR is not set.
    Auto,
    /// Always colour (also when NO_COLOR is set).
    Always,
    /// Never colour.
    Never,
}

/// Whether `NO_COLOR` asks for no colour: set and not empty.
pub fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// How a line is shown when colour is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    /// As is.
    Plain,
    /// Bold (headers).
    Bold,
    /// Bold red (needs attention now).
    Alert,
    /// Yellow (moving).
    Warn,
    /// Dim (history).
    Dim,
    /// Bold magenta (the data itself is odd: a counter reset).
    Odd,
}

impl Paint {
    fn sgr(self) -> Option<&'static str> {
        match self {
            Paint::Plain => None,
            Paint::Bold => Some("1"),
            Paint::Alert => Some("1;31"),
            Paint::Warn => Some("33"),
            Paint::Dim => Some("2"),
            Paint::Odd => Some("1;35"),
        }
    }
}

/// Where frames go and how they look.
#[derive(Debug, Clone)]
pub struct Screen {
    /// Standard output is a terminal: redraw in place, fit its width.
    pub tty: bool,
    /// Colour (and bold) on.
    pub color: bool,
    /// The terminal is in raw mode: lines end with CR LF.
    pub raw: bool,
}

impl Screen {
    /// The screen for `--color` and whether raw mode is on ([`Keys::raw`]).
    pub fn new(color: ColorArg, raw: bool) -> Screen {
        let tty = std::io::stdout().is_terminal();
        let color = match color {
            ColorArg::Auto => tty && !no_color_env(),
            ColorArg::Always => true,
            ColorArg::Never => false,
        };
        Screen { tty, color, raw }
    }

    /// The terminal's width in columns, read for every frame (the
    /// terminal may have been resized); `None` off a terminal.
    pub fn width(&self) -> Option<usize> {
        if !self.tty {
            return None;
        }
        crossterm::terminal::size()
            .ok()
            .map(|(cols, _)| usize::from(cols))
            .filter(|&c| c > 0)
    }

    /// One frame: on a terminal, a redraw from the top left with every
    /// line cut to `width`; otherwise the lines and an empty line after
    /// them, so that appended frames stay apart.
    pub fn frame(&self, lines: &[(Paint, String)], width: Option<usize>) -> String {
        let eol = if self.raw && self.tty { "\r\n" } else { "\n" };
        let mut out = String::new();
        if self.tty {
            out.push_str("\x1b[H\x1b[2J");
        }
        for (paint, line) in lines {
            let text = fit(line, width);
            match paint.sgr().filter(|_| self.color) {
                Some(code) => out.push_str(&format!("\x1b[{code}m{text}\x1b[0m")),
                None => out.push_str(&text),
            }
            out.push_str(eol);
        }
        if !self.tty {
            out.push_str(eol);
        }
        out
    }
}

/// `line` with control characters replaced by `?`, trailing blanks
/// removed, and cut to `width` characters (when given) instead of
/// wrapping. Characters count one column each: the data shown is
/// addresses, numbers and names.
pub fn fit(line: &str, width: Option<usize>) -> String {
    let clean = line.chars().map(|c| if c.is_control() { '?' } else { c });
    let s: String = match width {
        Some(w) => clean.take(w).collect(),
        None => clean.collect(),
    };
    s.trim_end().to_string()
}

/// Keys and signals that end a refreshing example; see the module
/// documentation.
#[derive(Debug)]
pub struct Keys {
    quit: Arc<AtomicBool>,
    raw: bool,
}

impl Keys {
    /// Starts listening when standard input is a terminal (raw mode on);
    /// otherwise does nothing and [`Keys::quit`] stays false (Ctrl-C then
    /// ends the process as usual: the terminal's mode was not changed).
    pub fn start() -> Keys {
        let quit = Arc::new(AtomicBool::new(false));
        let off = Keys {
            quit: quit.clone(),
            raw: false,
        };
        if !std::io::stdin().is_terminal() || crossterm::terminal::enable_raw_mode().is_err() {
            return off;
        }
        // The panic message must reach a terminal that is no longer raw.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = crossterm::terminal::disable_raw_mode();
            previous(info);
        }));
        for signal in [
            signal_hook::consts::SIGTERM,
            signal_hook::consts::SIGHUP,
            signal_hook::consts::SIGINT,
        ] {
            let _ = signal_hook::flag::register(signal, quit.clone());
        }
        let flag = quit.clone();
        let reader = std::thread::Builder::new()
            .name("keys".into())
            .spawn(move || {
                while let Ok(ev) = crossterm::event::read() {
                    if let Event::Key(k) = ev
                        && k.kind != KeyEventKind::Release
                        && (matches!(k.code, KeyCode::Char('q') | KeyCode::Char('Q'))
                            || (k.code == KeyCode::Char('c')
                                && k.modifiers.contains(KeyModifiers::CONTROL)))
                    {
                        flag.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            });
        if reader.is_err() {
            let _ = crossterm::terminal::disable_raw_mode();
            return off;
        }
        Keys { quit, raw: true }
    }

    /// Whether raw mode is on (lines must end with CR LF).
    pub fn raw(&self) -> bool {
        self.raw
    }

    /// Whether `q`, Ctrl-C or a signal asked to stop.
    pub fn quit(&self) -> bool {
        self.quit.load(Ordering::SeqCst)
    }

    /// Waits `d`, or less when asked to stop; returns [`Keys::quit`].
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.quit() {
                return true;
            }
            let now = Instant::now();
            if now >= end {
                return false;
            }
            std::thread::sleep((end - now).min(Self::SLICE));
        }
    }

    /// The longest a loop should block before looking at [`Keys::quit`].
    pub const SLICE: Duration = Duration::from_millis(50);
}

impl Drop for Keys {
    fn drop(&mut self) {
        if self.raw {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_not_wrapped_and_cannot_drive_the_terminal() {
        assert_eq!(fit("abcdef", Some(4)), "abcd");
        assert_eq!(fit("abc   ", None), "abc");
        assert_eq!(fit("ab  cd", Some(3)), "ab");
        assert_eq!(fit("pid 1 \x1b[2Jevil\x07", None), "pid 1 ?[2Jevil?");
        assert_eq!(fit("é€x", Some(2)), "é€");
    }

    #[test]
    fn frames_off_a_terminal_are_plain_and_apart() {
        let s = Screen {
            tty: false,
            color: false,
            raw: false,
        };
        let f = s.frame(
            &[(Paint::Bold, "head".into()), (Paint::Alert, "x".repeat(10))],
            None,
        );
        assert_eq!(f, format!("head\n{}\n\n", "x".repeat(10)));
        let s = Screen {
            tty: true,
            color: true,
            raw: true,
        };
        let f = s.frame(
            &[
                (Paint::Bold, "head".into()),
                (Paint::Plain, "abcdef".into()),
            ],
            Some(3),
        );
        assert_eq!(f, "\x1b[H\x1b[2J\x1b[1mhea\x1b[0m\r\nabc\r\n");
    }
}
