//! The text parsers (sysctl.d files, kube-proxy configuration) never panic
//! and keep their invariants on arbitrary input.

use conntrack_core::host::HostFs;
use conntrack_core::host::kube_proxy::parse_go_duration;
use conntrack_core::host::modprobe_d;
use conntrack_core::host::sysctl_d::{glob_match, normalize_key, parse};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn sysctl_parse_total(text in "(\\PC|\n|=|#|;|-|/|\\.| ){0,200}") {
        for a in parse(&text) {
            prop_assert!(!a.key.is_empty());
            prop_assert!(!a.key.starts_with('-'));
            prop_assert!(a.line >= 1 && a.line <= text.lines().count());
            prop_assert_eq!(a.value.trim(), a.value.as_str());
        }
    }

    #[test]
    fn key_normalisation_is_an_involution_on_slash_keys(k in "[a-z0-9_]{1,5}(/[a-z0-9_.]{1,5}){0,4}") {
        // Slash-first keys swap separators; normalising twice is stable
        // (the result is dot-first).
        let once = normalize_key(&k);
        prop_assert_eq!(normalize_key(&once), once.clone());
        prop_assert_eq!(once.len(), k.len());
    }

    #[test]
    fn glob_matches_itself_and_star(k in "[a-z_.]{0,30}", p in "[a-z_.*?]{0,12}") {
        prop_assert!(glob_match(&k, &k) || k.contains(['*', '?']));
        prop_assert!(glob_match("*", &k));
        let _ = glob_match(&p, &k);
    }

    #[test]
    fn modprobe_parse_total(text in "(\\PC|\n|options |nf_conntrack |hashsize=|=|#){0,120}") {
        for o in modprobe_d::parse("/etc/modprobe.d/x.conf", "x.conf", &text) {
            prop_assert!(!o.module.contains('-'));
            prop_assert!(o.line >= 1 && o.line <= text.lines().count());
        }
    }

    #[test]
    fn go_durations_total(s in "\\PC{0,24}", h in 0u32..1000, m in 0u32..60, sec in 0u32..60) {
        let _ = parse_go_duration(&s);
        prop_assert_eq!(
            parse_go_duration(&format!("{h}h{m}m{sec}s")),
            Some(h * 3600 + m * 60 + sec)
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn kube_proxy_detection_total(text in "(\\PC|\n|  |conntrack:|maxPerCore: |min: |--conntrack-max-per-core|=|--config=/){0,80}") {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("var/lib/kube-proxy");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("config.conf"), &text).unwrap();
        if let Some(k) = HostFs::new(t.path()).read_kube_proxy() {
            prop_assert!(!k.files.is_empty());
            let _ = k.effective_max(u32::MAX);
        }
    }
}
