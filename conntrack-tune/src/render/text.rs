//! Human-readable text and Markdown.

use super::wrap;
use crate::plan::{Action, Plan, Priority, Verify};
use conntrack_analyze::capture::escape_controls_keep_lines;
use conntrack_analyze::evidence::group;
use std::fmt::Write;

fn verify_line(v: &Verify) -> String {
    match v {
        Verify::ReadBack { path, expected } => format!("{path} reads {expected}"),
        Verify::CounterFlat { counter } => format!("`{counter}` stops increasing"),
        Verify::Manual { text } => text.clone(),
    }
}

fn bytes(b: i64) -> String {
    let sign = if b < 0 { "-" } else { "+" };
    format!(
        "{sign}{:.1} MiB",
        b.unsigned_abs() as f64 / (1u64 << 20) as f64
    )
}

fn effect_line(a: &Action) -> String {
    let mut parts = Vec::new();
    if let Some(m) = a.effect.memory_delta_bytes {
        parts.push(format!("memory {}", bytes(m)));
    }
    if let Some(n) = a.effect.entries_freed {
        parts.push(format!("{} entries freed", group(n as i64)));
    }
    if let Some(c) = a.effect.chain_length_after {
        parts.push(format!("mean chain at max {c:.2}"));
    }
    parts.push(a.effect.text.clone());
    parts.join("; ")
}

fn context_lines(plan: &Plan) -> Vec<String> {
    let c = &plan.context;
    let mut v = Vec::new();
    if let Some(k) = &c.kernel {
        v.push(format!(
            "kernel {k}{}",
            c.era
                .map(|e| format!(", sizing era {}", e.describe()))
                .unwrap_or_default()
        ));
    }
    let num = |x: Option<u32>| x.map(|v| group(i64::from(v))).unwrap_or_else(|| "?".into());
    v.push(format!(
        "entries {}, peak {}, max {}, buckets {}",
        num(c.count),
        num(c.peak),
        num(c.max),
        num(c.buckets)
    ));
    if let Some(b) = c.memory_budget_bytes {
        v.push(format!(
            "memory budget {}",
            bytes(b as i64).trim_start_matches('+')
        ));
    }
    v
}

/// Plain text, grouped by priority.
///
/// ```
/// use conntrack_analyze::{Facts, Observation};
/// use conntrack_tune::{plan, Policy, render};
/// let obs = Observation::default();
/// let t = render::text(&plan(&Facts::derive(&obs), &[], &Policy::default()).unwrap());
/// assert!(t.contains("No actions"));
/// assert!(t.contains("Could not judge"));
/// ```
pub fn text(plan: &Plan) -> String {
    let mut s = String::from("conntrack-tune plan\n");
    for l in context_lines(plan) {
        wrap(&mut s, "  ", "    ", &l);
    }
    if plan.actions.is_empty() {
        s.push_str("\nNo actions.\n");
    }
    let mut last: Option<Priority> = None;
    const HANG: &str = "              ";
    for a in &plan.actions {
        if last != Some(a.priority) {
            let _ = writeln!(s, "\n{} {}", a.priority, a.priority.meaning());
            last = Some(a.priority);
        }
        wrap(&mut s, "  ", "      ", &format!("[{}] {}", a.id, a.title));
        if let Some(c) = &a.change {
            wrap(
                &mut s,
                "    change:   ",
                HANG,
                &format!(
                    "{}: {} -> {}",
                    c.target,
                    c.current.as_ref().map_or("?".into(), |v| v.to_string()),
                    c.proposed
                ),
            );
        }
        for e in &a.evidence {
            wrap(
                &mut s,
                "    because:  ",
                HANG,
                &format!("{} ({})", e.text, e.source),
            );
        }
        wrap(&mut s, "    effect:   ", HANG, &effect_line(a));
        wrap(
            &mut s,
            "    risk:     ",
            HANG,
            &format!("{:?}: {}", a.risk.level, a.risk.text),
        );
        wrap(&mut s, "    rollback: ", HANG, &a.rollback);
        for v in &a.verify {
            wrap(&mut s, "    verify:   ", HANG, &verify_line(v));
        }
    }
    if !plan.warnings.is_empty() {
        s.push_str("\nWarnings\n");
        for w in &plan.warnings {
            wrap(&mut s, "  - ", "    ", &w.text);
        }
    }
    if !plan.declined.is_empty() {
        s.push_str("\nNot proposed\n");
        for d in &plan.declined {
            wrap(&mut s, "  - ", "    ", &format!("{}: {}", d.what, d.why));
        }
    }
    if !plan.unjudged.is_empty() {
        s.push_str("\nCould not judge\n");
        for u in &plan.unjudged {
            wrap(
                &mut s,
                "  - ",
                "    ",
                &format!("{}: {}", u.topic, u.missing),
            );
        }
    }
    if !plan.folk.is_empty() {
        s.push_str("\nFolk recipes, judged for this host\n");
        for v in &plan.folk {
            wrap(
                &mut s,
                "  ",
                "      ",
                &format!("[{}] {}", v.verdict, v.text),
            );
            wrap(&mut s, "      ", "      ", &v.reason);
            if !v.kernel_fact.is_empty() {
                wrap(&mut s, "      kernel: ", "        ", &v.kernel_fact);
            }
        }
    }
    // Paths, keys and values read from the host (a capture's sysctl.d
    // file names) must not drive the terminal.
    escape_controls_keep_lines(&s)
}

/// Escapes Markdown outside `code spans` (text inside backticks is shown
/// as is); newlines become spaces. An unclosed span is closed.
fn md_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    let mut code = false;
    for c in s.chars() {
        match c {
            '\n' | '\r' => o.push(' '),
            '`' => {
                code = !code;
                o.push(c);
            }
            '|' | '<' | '>' | '*' | '_' | '[' | ']' | '\\' if !code => {
                o.push('\\');
                o.push(c);
            }
            c => o.push(c),
        }
    }
    if code {
        o.push('`');
    }
    o
}

/// Markdown, one section per priority, one subsection per action.
///
/// ```
/// use conntrack_analyze::{Facts, Observation};
/// use conntrack_tune::{plan, Policy, render};
/// let obs = Observation::default();
/// let m = render::markdown(&plan(&Facts::derive(&obs), &[], &Policy::default()).unwrap());
/// assert!(m.starts_with("# conntrack-tune plan"));
/// ```
pub fn markdown(plan: &Plan) -> String {
    let mut s = String::from("# conntrack-tune plan\n\n");
    for l in context_lines(plan) {
        let _ = writeln!(s, "- {}", md_escape(&l));
    }
    let mut last: Option<Priority> = None;
    for a in &plan.actions {
        if last != Some(a.priority) {
            let _ = writeln!(s, "\n## {} — {}\n", a.priority, a.priority.meaning());
            last = Some(a.priority);
        }
        let _ = writeln!(
            s,
            "### {} (`{}`)\n",
            md_escape(&a.title),
            a.id.replace('`', "'")
        );
        if let Some(c) = &a.change {
            let _ = writeln!(
                s,
                "- **Change:** `{}`: {} → {}",
                c.target.replace('`', "'"),
                md_escape(&c.current.as_ref().map_or("?".into(), |v| v.to_string())),
                md_escape(&c.proposed.to_string())
            );
        }
        for e in &a.evidence {
            let _ = writeln!(
                s,
                "- **Evidence** ({}): {}",
                md_escape(&e.source.to_string()),
                md_escape(&e.text)
            );
        }
        let _ = writeln!(s, "- **Effect:** {}", md_escape(&effect_line(a)));
        let _ = writeln!(
            s,
            "- **Risk** ({:?}): {}",
            a.risk.level,
            md_escape(&a.risk.text)
        );
        let _ = writeln!(s, "- **Rollback:** {}", md_escape(&a.rollback));
        for v in &a.verify {
            let _ = writeln!(s, "- **Verify:** {}", md_escape(&verify_line(v)));
        }
        s.push('\n');
    }
    let sections: [(&str, Vec<String>); 4] = [
        (
            "Warnings",
            plan.warnings.iter().map(|w| md_escape(&w.text)).collect(),
        ),
        (
            "Not proposed",
            plan.declined
                .iter()
                .map(|d| format!("**{}**: {}", md_escape(&d.what), md_escape(&d.why)))
                .collect(),
        ),
        (
            "Could not judge",
            plan.unjudged
                .iter()
                .map(|u| format!("**{}**: {}", md_escape(&u.topic), md_escape(&u.missing)))
                .collect(),
        ),
        (
            "Folk recipes, judged for this host",
            plan.folk
                .iter()
                .map(|v| {
                    format!(
                        "**{}** `{}`: {}{}",
                        v.verdict,
                        v.text.replace('`', "'"),
                        md_escape(&v.reason),
                        if v.kernel_fact.is_empty() {
                            String::new()
                        } else {
                            format!(" (kernel: {})", md_escape(&v.kernel_fact))
                        }
                    )
                })
                .collect(),
        ),
    ];
    for (title, items) in sections {
        if items.is_empty() {
            continue;
        }
        let _ = writeln!(s, "\n## {title}\n");
        for i in items {
            let _ = writeln!(s, "- {i}");
        }
    }
    // Paths, keys and values read from the host (a capture's sysctl.d
    // file names) must not drive the terminal.
    escape_controls_keep_lines(&s)
}

#[cfg(test)]
mod tests {
    use super::md_escape;

    #[test]
    fn escapes_outside_code_only() {
        assert_eq!(md_escape("a_b `c_d` e|f"), "a\\_b `c_d` e\\|f");
        assert_eq!(md_escape("x\ny `open_"), "x y `open_`");
    }
}
