//! Persistence of what the other rules set at run time: a sysctl.d file
//! for the host (with the files that would override it at boot), kube-
//! proxy's configuration when it manages max, the hashsize in modprobe.d
//! or on the kernel command line, and for a non-initial namespace advice
//! on where its per-namespace values are set (never the host's sysctl.d,
//! which systemd-sysctl applies in the initial namespace only).

use super::{Ctx, Outcome, n};
use crate::plan::*;
use conntrack_analyze::capacity::EXPLICIT_HASHSIZE_FACTOR;
use conntrack_core::host::ModuleKind;

/// `settings`: the sysctls set by earlier rules, in order. `new_max` and
/// `new_buckets`: sizing's decisions.
pub(crate) fn plan(
    cx: &Ctx,
    settings: &[(String, String)],
    new_max: Option<u64>,
    new_buckets: Option<u64>,
) -> Outcome {
    let mut o = Outcome::default();
    if settings.is_empty() && new_buckets.is_none() {
        return o;
    }
    let kube_max = cx.kube.is_some();
    let max_now = new_max.or(cx.facts.table.max).unwrap_or(0);
    let mut entries: Vec<(String, String)> = settings
        .iter()
        .filter(|(k, _)| !(kube_max && k == KEY_MAX))
        .cloned()
        .collect();
    let via_sysctl = cx.facts.kernel.is_none_or(|v| v.at_least(4, 9));
    if let Some(b) = new_buckets {
        if via_sysctl {
            entries.push((KEY_BUCKETS.into(), b.to_string()));
        }
        // With an explicit hashsize the kernel sets max = 8 x buckets at
        // load: persist max too so boot does not change it.
        if !kube_max && max_now > 0 && !entries.iter().any(|(k, _)| k == KEY_MAX) {
            entries.push((KEY_MAX.into(), max_now.to_string()));
        }
    }
    if cx.in_other_netns() {
        let ns: Vec<(String, String)> = entries
            .iter()
            .filter(|(k, _)| !is_global_sysctl(k))
            .cloned()
            .collect();
        entries.retain(|(k, _)| is_global_sysctl(k));
        in_namespace(&mut o, &ns);
    }
    let file = format!("/etc/sysctl.d/{}", cx.policy.sysctl_file_name);
    if kube_max && let Some(m) = new_max {
        o.actions.push(kube_proxy(cx, m));
    }
    match cx.facts.obs.config.sysctl_d.as_ref() {
        Some(scan) => {
            let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
            for ov in scan.overrides(&cx.policy.sysctl_file_name, &keys) {
                let ours = entries.iter().find(|(k, _)| *k == ov.key).map(|(_, v)| v);
                if ours.is_some_and(|v| *v == ov.value) {
                    continue; // the same value: harmless
                }
                o.warn(
                    WarningKind::PersistenceOverridden,
                    format!(
                        "{}:{} sets {} = {} and is applied after {file}: at boot it overrides the \
                         plan's value; change it there (or remove the line)",
                        ov.path, ov.line, ov.key, ov.value
                    ),
                );
            }
            if let Some(f) = scan.files.iter().find(|f| f.path == file) {
                o.warn(
                    WarningKind::Other,
                    if f.masked {
                        format!(
                            "{file} is a symlink to /dev/null (masked by the administrator): \
                             the script will not replace it; choose another file name"
                        )
                    } else {
                        format!("{file} already exists and would be replaced")
                    },
                );
            }
        }
        None => o.unjudged(
            "persistence precedence",
            "sysctl.d directories not scanned: cannot tell whether another file overrides the \
             plan's",
        ),
    }
    if !entries.is_empty() {
        let desc: Vec<String> = entries.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let module_note = match cx.facts.obs.config.conntrack_module {
            ModuleKind::BuiltIn => "",
            _ => {
                " If nf_conntrack is a module loaded after systemd-sysctl ran, these keys do not \
                 exist yet at boot: list nf_conntrack in /etc/modules-load.d."
            }
        };
        let host_note = if cx.in_other_netns() {
            " This file is for the host: these values are global and set in the initial \
             namespace (the observation comes from another namespace)."
        } else {
            ""
        };
        let mut a = Action::new(
            ActionKind::PersistSysctl {
                file: file.clone(),
                entries: entries.clone(),
            },
            Priority::P3,
            Scope::Boot,
            format!("Persist the new values in {file}"),
        );
        a.change = Some(Change {
            target: file.clone(),
            current: None,
            proposed: Value::Text(desc.join(", ")),
        });
        a.evidence.push(Evidence::new(
            Source::Plan,
            "values set at run time are lost at reboot",
        ));
        a.effect.text = format!("systemd-sysctl applies them at boot.{module_note}{host_note}");
        a.risk = Risk {
            level: RiskLevel::Low,
            text: "a later file (by name) or /etc/sysctl.conf overrides it; see the warnings"
                .into(),
        };
        a.rollback = format!("rm {file}");
        a.verify = vec![Verify::Manual {
            text: format!(
                "systemd-sysctl --cat-config (or sysctl --system) lists {file} and no later file \
                 sets the same keys"
            ),
        }];
        o.actions.push(a);
    }
    if let Some(b) = new_buckets {
        hashsize(cx, &mut o, b, max_now);
    }
    o
}

fn kube_proxy(cx: &Ctx, m: u64) -> Action {
    let cpus = cx.facts.cpu.online as u64;
    let kube = cx.kube.as_ref();
    // maxPerCore needs the CPU count; without it, conntrack.min sets the
    // floor kube-proxy applies whatever the CPUs.
    let (title, target, current, proposed) = if cpus > 0 {
        let per_core = m.div_ceil(cpus);
        (
            format!(
                "Persist max through kube-proxy: conntrack.maxPerCore {per_core} (or conntrack.min {m})"
            ),
            "kube-proxy conntrack.maxPerCore",
            kube.and_then(|k| k.max_per_core.map(u64::from)),
            per_core,
        )
    } else {
        (
            format!("Persist max through kube-proxy: conntrack.min {m}"),
            "kube-proxy conntrack.min",
            kube.and_then(|k| k.min.map(u64::from)),
            m,
        )
    };
    let mut a = Action::advice(
        AdviceTopic::KubeProxyConfig,
        Priority::P3,
        Scope::Boot,
        title,
    );
    a.change = Some(Change {
        target: target.into(),
        current: current.map(Value::Count),
        proposed: Value::Count(proposed),
    });
    a.evidence.push(Evidence::new(
        Source::HostFiles,
        "kube-proxy sets nf_conntrack_max at start (older releases only raise it, newer ones \
         set it whenever it differs): a sysctl.d value below kube-proxy's is overwritten",
    ));
    a.effect.text = format!("kube-proxy sets max {} or more at every start", n(m));
    a.risk = Risk {
        level: RiskLevel::Low,
        text: "kube-proxy also raises buckets to max/4 if smaller".into(),
    };
    a.rollback = "restore the previous kube-proxy configuration".into();
    a.verify = vec![Verify::Manual {
        text: "after a kube-proxy restart, sysctl net.netfilter.nf_conntrack_max shows the new \
               value"
            .into(),
    }];
    a
}

/// Advice for persisting per-namespace values of a non-initial namespace.
fn in_namespace(o: &mut Outcome, entries: &[(String, String)]) {
    if entries.is_empty() {
        return;
    }
    let desc: Vec<String> = entries.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let sysctl_w: Vec<String> = desc.iter().map(|kv| format!("sysctl -w {kv}")).collect();
    let docker: Vec<String> = desc.iter().map(|kv| format!("--sysctl {kv}")).collect();
    let k8s: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{{name: {k}, value: \"{v}\"}}"))
        .collect();
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    let mut a = Action::advice(
        AdviceTopic::NamespaceSysctls,
        Priority::P3,
        Scope::ObservedNamespace,
        "Persist the per-namespace values where the namespace is created (not in the host's \
         /etc/sysctl.d)",
    );
    a.change = Some(Change {
        target: "the observed namespace's sysctls".into(),
        current: None,
        proposed: Value::Text(desc.join(", ")),
    });
    a.evidence.push(Evidence::new(
        Source::Facts,
        "the observation comes from a non-initial network namespace",
    ));
    a.evidence.push(Evidence::new(
        Source::Kernel,
        "these sysctls are per network namespace: a new namespace starts from the kernel \
         defaults, and /etc/sysctl.d is applied by systemd-sysctl in the initial namespace only",
    ));
    a.effect.text = format!(
        "the values survive a restart of the namespace when set by what creates it: a named \
         namespace: `ip netns exec NAME sh -c '{}'` in the unit or script that runs `ip netns \
         add`; Docker: `docker run {}` (compose: `sysctls:`); Kubernetes: the pod's \
         `spec.securityContext.sysctls: [{}]` (net.* sysctls are namespaced; {} are not in the \
         safe set, so the kubelet needs `--allowed-unsafe-sysctls`). Nothing is written to the \
         host's /etc/sysctl.d for them",
        sysctl_w.join("; "),
        docker.join(" "),
        k8s.join(", "),
        keys.join(", ")
    );
    a.risk = Risk {
        level: RiskLevel::Low,
        text: "until then the values set at run time last only as long as the namespace".into(),
    };
    a.rollback =
        "remove the settings from the namespace's creation (unit, docker run, pod spec)".into();
    a.verify = vec![Verify::Manual {
        text: format!(
            "after the namespace or container is recreated, `sysctl {}` inside it shows the \
             values",
            keys.join(" ")
        ),
    }];
    o.actions.push(a);
}

fn hashsize(cx: &Ctx, o: &mut Outcome, b: u64, max_now: u64) {
    let mk = cx.facts.obs.config.conntrack_module;
    let why = format!(
        "an explicit hashsize makes the kernel set max = {EXPLICIT_HASHSIZE_FACTOR} x buckets = \
         {} at load; the sysctl file sets max back",
        n(b * EXPLICIT_HASHSIZE_FACTOR)
    );
    if let Some(scan) = &cx.facts.obs.config.modprobe_d {
        for other in scan.settings("nf_conntrack", "hashsize") {
            o.warn(
                WarningKind::PersistenceOverridden,
                format!(
                    "{}:{} also sets nf_conntrack hashsize={}: modprobe passes every file's \
                     options in name order and the last value wins, so keep one setting (change \
                     it there to {b}, or remove it)",
                    other.path, other.line, other.value
                ),
            );
        }
    }
    if matches!(mk, ModuleKind::Module | ModuleKind::Unknown) {
        let file = format!("/etc/modprobe.d/{}", cx.policy.modprobe_file_name);
        let note = if mk == ModuleKind::Unknown {
            " Whether nf_conntrack is a module is unknown: if it is built in, use the kernel \
             command line nf_conntrack.hashsize instead."
        } else {
            ""
        };
        let mut a = Action::new(
            ActionKind::ModprobeOption {
                file: file.clone(),
                module: "nf_conntrack".into(),
                option: "hashsize".into(),
                value: b.to_string(),
            },
            Priority::P3,
            Scope::Boot,
            format!("Persist hashsize={b} in {file}"),
        );
        a.change = Some(Change {
            target: file.clone(),
            current: None,
            proposed: Value::Text(format!("options nf_conntrack hashsize={b}")),
        });
        a.evidence.push(Evidence::new(Source::Kernel, why.clone()));
        a.effect.text = format!(
            "the table has {b} buckets from the moment the module loads (max {} from the sysctl \
             file).{note}",
            n(max_now)
        );
        a.risk = Risk {
            level: RiskLevel::Low,
            text: "ignored when nf_conntrack is built in".into(),
        };
        a.rollback = format!("rm {file}");
        a.verify = vec![Verify::Manual {
            text: "after reboot, /sys/module/nf_conntrack/parameters/hashsize shows the value"
                .into(),
        }];
        o.actions.push(a);
    }
    if mk == ModuleKind::BuiltIn {
        let mut a = Action::new(
            ActionKind::KernelCmdline {
                param: "nf_conntrack.hashsize".into(),
                value: b.to_string(),
            },
            Priority::P3,
            Scope::Boot,
            format!("Add nf_conntrack.hashsize={b} to the kernel command line"),
        );
        a.change = Some(Change {
            target: "kernel command line".into(),
            current: None,
            proposed: Value::Text(format!("nf_conntrack.hashsize={b}")),
        });
        a.evidence.push(Evidence::new(
            Source::Kernel,
            format!("nf_conntrack is built in: modprobe.d options do not apply. {why}"),
        ));
        a.effect.text = "the table is allocated at this size at boot".into();
        a.risk = Risk {
            level: RiskLevel::Low,
            text: "needs a boot loader change (GRUB_CMDLINE_LINUX) and a reboot".into(),
        };
        a.rollback = "remove the parameter from the boot loader configuration".into();
        a.verify = vec![Verify::Manual {
            text: "grep -o 'nf_conntrack.hashsize=[0-9]*' /proc/cmdline".into(),
        }];
        o.actions.push(a);
    }
}
