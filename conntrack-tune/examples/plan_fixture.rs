//! Prints the plan for an observation JSON file:
//! `cargo run -p conntrack-tune --example plan_fixture -- FILE [text|markdown|json|sh|sysctl|nft|iptables]`.
use conntrack_tune::{Observation, Policy, plan, render};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: plan_fixture OBSERVATION.json [format]");
        std::process::exit(2);
    };
    let format = args.next().unwrap_or_else(|| "text".into());
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let obs: Observation = match serde_json::from_str(&text) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
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
        "sysctl" => render::sysctl_d(&p)
            .map(|f| f.map(|f| f.content).unwrap_or_default())
            .map_err(|e| e.to_string()),
        "nft" => render::nftables(&p).map_err(|e| e.to_string()),
        "iptables" => render::iptables(&p).map_err(|e| e.to_string()),
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
