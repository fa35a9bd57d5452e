//! Shared by the root package's tests that run the built examples
//! (`mod support;`): builds the examples once per test process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `target/<profile>/examples` after building `names` there, in this test's
/// own target directory and profile (`cargo build --examples`, a no-op when
/// they are fresh). Built once per test process: every call of one test
/// binary must ask for the same examples.
#[allow(dead_code)] // a test binary that needs features uses examples_dir_with only
pub fn examples_dir(names: &'static [&'static str]) -> &'static Path {
    examples_dir_with(names, &[])
}

/// [`examples_dir`] with the package's `features` on (`--features`).
pub fn examples_dir_with(
    names: &'static [&'static str],
    features: &'static [&'static str],
) -> &'static Path {
    type Built = (&'static [&'static str], &'static [&'static str], PathBuf);
    static DIR: OnceLock<Built> = OnceLock::new();
    let (built, with, dir) = DIR.get_or_init(|| (names, features, build(names, features)));
    assert_eq!(
        (*built, *with),
        (names, features),
        "one set of examples per test binary"
    );
    dir
}

fn build(names: &[&str], features: &[&str]) -> PathBuf {
    // This test runs as target/<profile>/deps/<test binary>.
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary under target/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir.parent().expect("target dir");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet"])
        .arg("--target-dir")
        .arg(target_dir);
    for name in names {
        cmd.args(["--example", name]);
    }
    if !features.is_empty() {
        cmd.arg("--features").arg(features.join(","));
    }
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let out = cmd.output().expect("run cargo build --example");
    assert!(
        out.status.success(),
        "building the examples {names:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    profile_dir.join("examples")
}
