//! Plans for the live host from what `/proc` and `/sys` say (no flow dump:
//! the plan lists what it could not judge without one). Changes nothing.
//!
//! `cargo run -p conntrack-tune --example plan_host [ROOT] [text|markdown|json|sh]`
use conntrack_core::host::HostFs;
use conntrack_tune::{Policy, analyze_input, plan, render};
use std::path::Path;

fn main() {
    let mut args = std::env::args().skip(1);
    let root = args.next().unwrap_or_else(|| "/".into());
    let format = args.next().unwrap_or_else(|| "text".into());
    let report = HostFs::new(&root).read_snapshot();
    for problem in report.malformed() {
        eprintln!("warning: {problem}");
    }
    let mut obs = analyze_input::observe(report.snapshot, None, None);
    analyze_input::scan_root(&mut obs, Path::new(&root));
    let p = match plan(&obs, &Policy::default()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("policy: {e}");
            std::process::exit(1);
        }
    };
    let out = match format.as_str() {
        "markdown" => Ok(render::markdown(&p)),
        "json" => render::json(&p).map_err(|e| e.to_string()),
        "sh" => render::shell_script(&p).map_err(|e| e.to_string()),
        _ => Ok(render::text(&p)),
    };
    match out {
        Ok(s) => print!("{s}"),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
