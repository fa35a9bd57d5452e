//! sysctl.d and modprobe.d files.

use super::{RenderError, RenderedFile, one_line, plain_key, plain_value, unsafe_value};
use crate::plan::{ActionKind, Plan};

/// The sysctl.d file of the plan's persistence action, if any.
///
/// A sysctl.d file is read by systemd-sysctl in the host's initial network
/// namespace. For a plan made in another namespace
/// (`context.init_netns == Some(false)`) the file holds only the global
/// keys ([`crate::plan::is_global_sysctl`]) and says it is for the host;
/// a per-namespace key (a hand-built plan may carry one) is written as a
/// comment, never as an assignment that would change the host's own value.
///
/// ```
/// use conntrack_tune::plan::*;
/// let mut plan = Plan::default();
/// plan.actions.push(Action::new(
///     ActionKind::PersistSysctl {
///         file: "/etc/sysctl.d/90-conntrack-kit.conf".into(),
///         entries: vec![("net.netfilter.nf_conntrack_max".into(), "262144".into())],
///     },
///     Priority::P3, Scope::Boot, "persist",
/// ));
/// let f = conntrack_tune::render::sysctl_d(&plan).unwrap().unwrap();
/// assert_eq!(f.path, "/etc/sysctl.d/90-conntrack-kit.conf");
/// assert!(f.content.contains("\nnet.netfilter.nf_conntrack_max = 262144\n"));
/// ```
pub fn sysctl_d(plan: &Plan) -> Result<Option<RenderedFile>, RenderError> {
    let Some((file, entries)) = plan.actions.iter().find_map(|a| match &a.kind {
        ActionKind::PersistSysctl { file, entries } => Some((file, entries)),
        _ => None,
    }) else {
        return Ok(None);
    };
    check_path(file)?;
    let mut out = String::from(
        "# Written by conntrack-tune (conntrack-kit). Files with a later name and\n\
         # /etc/sysctl.conf are applied after this one and win for the same key.\n",
    );
    for w in &plan.warnings {
        if w.kind == crate::plan::WarningKind::PersistenceOverridden
            || w.kind == crate::plan::WarningKind::KubeProxyManaged
        {
            out.push_str(&format!("# WARNING: {}\n", one_line(&w.text)));
        }
    }
    let other_netns = plan.context.init_netns == Some(false);
    if other_netns {
        out.push_str(
            "# For the HOST (initial network namespace): the plan was made in another\n\
             # namespace. Only global values are set here; per-namespace values belong\n\
             # where that namespace is created (see the plan's persist:netns advice).\n",
        );
    }
    for (k, v) in entries {
        if !plain_key(k) {
            return Err(unsafe_value("sysctl key", k));
        }
        if !plain_value(v) {
            return Err(unsafe_value("sysctl value", v));
        }
        if other_netns && !crate::plan::is_global_sysctl(k) {
            out.push_str(&format!(
                "# not set here: {k} = {v} is per namespace and this file applies to the \
                 host's initial namespace\n"
            ));
            continue;
        }
        if let Some(a) = plan.actions.iter().find(|a| match &a.kind {
            ActionKind::SetMax { .. } => k == crate::plan::KEY_MAX,
            ActionKind::SetTimeout { key, .. } => key.sysctl() == *k,
            ActionKind::SetBuckets { .. } => k == crate::plan::KEY_BUCKETS,
            _ => false,
        }) {
            out.push_str(&format!("# {}: {}\n", one_line(&a.id), one_line(&a.title)));
        }
        out.push_str(&format!("{k} = {v}\n"));
    }
    Ok(Some(RenderedFile {
        path: file.clone(),
        content: out,
    }))
}

/// The modprobe.d file of the plan's module option action, if any.
pub fn modprobe_d(plan: &Plan) -> Result<Option<RenderedFile>, RenderError> {
    let mut path = None;
    let mut out = String::from(
        "# Written by conntrack-tune (conntrack-kit). Applies only when nf_conntrack is a\n\
         # loadable module. With an explicit hashsize the kernel sets\n\
         # nf_conntrack_max = 8 x hashsize at load: the sysctl.d file sets max back.\n",
    );
    for a in &plan.actions {
        if let ActionKind::ModprobeOption {
            file,
            module,
            option,
            value,
        } = &a.kind
        {
            check_path(file)?;
            for (what, v) in [
                ("module name", module),
                ("module option", option),
                ("module option value", value),
            ] {
                if !plain_key(v) {
                    return Err(unsafe_value(what, v));
                }
            }
            if path.get_or_insert_with(|| file.clone()) != file {
                continue; // one file per rendering
            }
            out.push_str(&format!(
                "# {}\noptions {module} {option}={value}\n",
                one_line(&a.title)
            ));
        }
    }
    Ok(path.map(|path| RenderedFile { path, content: out }))
}

fn check_path(p: &str) -> Result<(), RenderError> {
    let ok = p.starts_with('/')
        && !p.split('/').any(|c| c == "..")
        && !p.chars().any(|c| c.is_control());
    if ok {
        Ok(())
    } else {
        Err(unsafe_value("file path", p))
    }
}
