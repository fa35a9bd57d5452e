//! modprobe.d: the `options` lines that set module parameters at load,
//! so a plan that persists `nf_conntrack hashsize` knows which other file
//! already sets it.
//!
//! Source: `modprobe.d(5)`: configuration is read from `/etc/modprobe.d`,
//! `/run/modprobe.d`, `/usr/local/lib/modprobe.d` and `/lib/modprobe.d`
//! (and `/usr/lib/modprobe.d`), files ending in `.conf`, a file in an
//! earlier directory replacing a same-named one in a later directory; the
//! options of every file that names the module are passed to it in the
//! order read, and for a parameter given twice the module parser keeps
//! the last value.

use super::HostFs;
use serde::{Deserialize, Serialize};

/// The directories scanned, highest precedence first.
pub const MODPROBE_DIRS: [&str; 5] = [
    "/etc/modprobe.d",
    "/run/modprobe.d",
    "/usr/local/lib/modprobe.d",
    "/lib/modprobe.d",
    "/usr/lib/modprobe.d",
];

/// One `options MODULE param=value` setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleOption {
    /// The file (host path).
    pub path: String,
    /// File name.
    pub name: String,
    /// 1-based line.
    pub line: usize,
    /// Module.
    pub module: String,
    /// Parameter.
    pub param: String,
    /// Value.
    pub value: String,
}

/// The options found, in the order modprobe reads them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ModprobeScan {
    /// Every parameter setting of every `options` line.
    pub options: Vec<ModuleOption>,
}

impl ModprobeScan {
    /// The settings of one module parameter, in reading order (the last
    /// one wins).
    pub fn settings<'a>(
        &'a self,
        module: &'a str,
        param: &'a str,
    ) -> impl Iterator<Item = &'a ModuleOption> + 'a {
        self.options
            .iter()
            .filter(move |o| o.module == module && o.param == param)
    }
}

/// Parses one file's `options` lines (module names with `-` and `_` are
/// the same name).
///
/// ```
/// use conntrack_core::host::modprobe_d::parse;
/// let o = parse("/etc/modprobe.d/x.conf", "x.conf",
///               "# c\noptions nf-conntrack hashsize=16384 expect_hashsize=64\nblacklist foo\n");
/// assert_eq!(o.len(), 2);
/// assert_eq!((o[0].module.as_str(), o[0].param.as_str(), o[0].value.as_str()),
///            ("nf_conntrack", "hashsize", "16384"));
/// assert_eq!(o[0].line, 2);
/// ```
pub fn parse(path: &str, name: &str, text: &str) -> Vec<ModuleOption> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut toks = line.split('#').next().unwrap_or("").split_whitespace();
        if toks.next() != Some("options") {
            continue;
        }
        let Some(module) = toks.next() else {
            continue;
        };
        let module = module.replace('-', "_");
        for t in toks {
            if let Some((p, v)) = t.split_once('=') {
                out.push(ModuleOption {
                    path: path.to_string(),
                    name: name.to_string(),
                    line: i + 1,
                    module: module.clone(),
                    param: p.to_string(),
                    value: v.trim_matches('"').to_string(),
                });
            }
        }
    }
    out
}

impl HostFs {
    /// Scans the modprobe.d directories under the root.
    pub fn read_modprobe_d(&self) -> ModprobeScan {
        let mut chosen: std::collections::BTreeMap<String, String> = Default::default();
        for dir in MODPROBE_DIRS {
            let Ok(mut names) = self.dir_names(dir.trim_start_matches('/')) else {
                continue;
            };
            names.retain(|n| n.ends_with(".conf"));
            for n in names {
                chosen.entry(n.clone()).or_insert(format!("{dir}/{n}"));
            }
        }
        let mut scan = ModprobeScan::default();
        for (name, path) in chosen {
            if let Some(text) = self.read_config_text(&path) {
                scan.options.extend(parse(&path, &name, &text));
            }
        }
        scan
    }
}
