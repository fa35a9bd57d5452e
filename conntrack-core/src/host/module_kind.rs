//! Whether nf_conntrack and its helpers are loadable modules or built into
//! the kernel: it decides where a `hashsize` is persisted (modprobe.d or
//! the kernel command line) and whether a helper can be unloaded.

use super::HostFs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether a kernel module (nf_conntrack, or a conntrack helper) is a
/// loadable module or built into the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ModuleKind {
    /// Loadable module: modprobe.d options apply at load, `modprobe -r`
    /// can unload it.
    Module,
    /// Built in: only the kernel command line sets its parameters (e.g.
    /// `hashsize`) at boot, and it can never be unloaded.
    BuiltIn,
    /// Not known.
    #[default]
    Unknown,
}

/// A module name that is safe to use as one path component.
fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.chars().any(|c| c.is_control())
}

impl HostFs {
    /// Module names listed in `ROOT/proc/modules`; `None` when the file is
    /// absent or unreadable (a kernel without module support has none).
    fn loaded_modules(&self) -> Option<Vec<String>> {
        self.read_modules().ok()
    }

    /// Whether nf_conntrack is a loadable module: `/sys/module/nf_conntrack/
    /// initstate` exists only for loadable modules; a built-in module with
    /// parameters has the directory without it; `modules.builtin` of the
    /// running release lists built-in modules.
    ///
    /// ```
    /// use conntrack_core::host::{HostFs, ModuleKind};
    /// let t = tempfile::tempdir().unwrap();
    /// std::fs::create_dir_all(t.path().join("sys/module/nf_conntrack/parameters")).unwrap();
    /// assert_eq!(HostFs::new(t.path()).read_conntrack_module_kind(None), ModuleKind::BuiltIn);
    /// ```
    pub fn read_conntrack_module_kind(&self, release: Option<&str>) -> ModuleKind {
        if self.stat("sys/module/nf_conntrack/initstate").is_some() {
            return ModuleKind::Module;
        }
        if self
            .stat("sys/module/nf_conntrack")
            .is_some_and(|m| m.is_dir())
        {
            return ModuleKind::BuiltIn;
        }
        if let Some(rel) = release.filter(|r| plain_name(r)) {
            let builtin = format!("/lib/modules/{rel}/modules.builtin");
            if let Some(text) = self.read_config_text(&builtin) {
                return if text.lines().any(|l| l.ends_with("/nf_conntrack.ko")) {
                    ModuleKind::BuiltIn
                } else {
                    ModuleKind::Module
                };
            }
        }
        ModuleKind::Unknown
    }

    /// Whether each helper module (e.g. `nf_conntrack_ftp`) is loadable or
    /// built in:
    ///
    /// - `/sys/module/NAME/initstate` exists, or `/proc/modules` lists it:
    ///   a loadable module (`initstate` is created for loaded modules only);
    /// - `/sys/module/NAME` exists but `/proc/modules` does not list it:
    ///   built in (`param_sysfs_builtin` in `kernel/params.c` creates the
    ///   directory for built-in code that has parameters);
    /// - `/proc/modules` is absent and `/sys/module/NAME` exists: built in
    ///   (a kernel built with `CONFIG_MODULES=n` has no `/proc/modules`);
    /// - otherwise unknown.
    ///
    /// ```
    /// use conntrack_core::host::{HostFs, ModuleKind};
    /// let t = tempfile::tempdir().unwrap();
    /// std::fs::create_dir_all(t.path().join("sys/module/nf_conntrack_ftp/parameters")).unwrap();
    /// let kinds = HostFs::new(t.path())
    ///     .read_helper_kinds(&["nf_conntrack_ftp".into(), "nf_conntrack_sip".into()]);
    /// assert_eq!(kinds["nf_conntrack_ftp"], ModuleKind::BuiltIn);
    /// assert_eq!(kinds["nf_conntrack_sip"], ModuleKind::Unknown);
    /// ```
    pub fn read_helper_kinds(&self, helpers: &[String]) -> BTreeMap<String, ModuleKind> {
        let modules = self.loaded_modules();
        helpers
            .iter()
            .map(|h| (h.clone(), self.helper_kind(h, modules.as_deref())))
            .collect()
    }

    fn helper_kind(&self, name: &str, modules: Option<&[String]>) -> ModuleKind {
        if !plain_name(name) {
            return ModuleKind::Unknown;
        }
        let sysmod = format!("sys/module/{name}");
        if self.stat(&format!("{sysmod}/initstate")).is_some()
            || modules.is_some_and(|m| m.iter().any(|n| n == name))
        {
            return ModuleKind::Module;
        }
        if self.stat(&sysmod).is_some_and(|m| m.is_dir()) {
            return ModuleKind::BuiltIn;
        }
        ModuleKind::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_kinds_from_root() {
        let t = tempfile::tempdir().unwrap();
        let dir = |n: &str| {
            std::fs::create_dir_all(t.path().join("sys/module").join(n).join("parameters")).unwrap()
        };
        dir("nf_conntrack_ftp");
        dir("nf_conntrack_sip");
        let fs = HostFs::new(t.path());
        let names: Vec<String> = ["nf_conntrack_ftp", "nf_conntrack_sip", "nf_conntrack_irc"]
            .map(String::from)
            .to_vec();
        // CONFIG_MODULES=n: no /proc/modules, helpers only in /sys/module.
        let k = fs.read_helper_kinds(&names);
        assert_eq!(k["nf_conntrack_ftp"], ModuleKind::BuiltIn);
        assert_eq!(k["nf_conntrack_irc"], ModuleKind::Unknown);
        // With module support: listed in /proc/modules means loadable; in
        // /sys/module only means built in.
        std::fs::create_dir_all(t.path().join("proc")).unwrap();
        std::fs::write(
            t.path().join("proc/modules"),
            "nf_conntrack_irc 20480 0 - Live 0x0\nnf_conntrack 172032 4 - Live 0x0\n",
        )
        .unwrap();
        let k = fs.read_helper_kinds(&names);
        assert_eq!(k["nf_conntrack_irc"], ModuleKind::Module);
        assert_eq!(k["nf_conntrack_ftp"], ModuleKind::BuiltIn);
        // initstate marks a loaded module even if /proc/modules misses it.
        std::fs::write(
            t.path().join("sys/module/nf_conntrack_sip/initstate"),
            "live\n",
        )
        .unwrap();
        assert_eq!(
            fs.read_helper_kinds(&names)["nf_conntrack_sip"],
            ModuleKind::Module
        );
        assert_eq!(
            fs.read_helper_kinds(&["../etc".into()])["../etc"],
            ModuleKind::Unknown
        );
    }

    #[test]
    fn conntrack_module_kind_from_root() {
        let t = tempfile::tempdir().unwrap();
        let fs = HostFs::new(t.path());
        assert_eq!(
            fs.read_conntrack_module_kind(Some("6.1.0")),
            ModuleKind::Unknown
        );
        std::fs::create_dir_all(t.path().join("lib/modules/6.1.0")).unwrap();
        std::fs::write(
            t.path().join("lib/modules/6.1.0/modules.builtin"),
            "kernel/net/netfilter/nf_conntrack.ko\n",
        )
        .unwrap();
        assert_eq!(
            fs.read_conntrack_module_kind(Some("6.1.0")),
            ModuleKind::BuiltIn
        );
        std::fs::create_dir_all(t.path().join("sys/module/nf_conntrack")).unwrap();
        std::fs::write(t.path().join("sys/module/nf_conntrack/initstate"), "live\n").unwrap();
        assert_eq!(
            fs.read_conntrack_module_kind(Some("6.1.0")),
            ModuleKind::Module
        );
    }
}
