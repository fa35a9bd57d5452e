//! With feature `trace`: compiles the drop tracer's BPF program
//! (src/trace/bpf/conntrack_drops.bpf.c) with clang into OUT_DIR, twice
//! (see `compile` below), where `trace::loader` embeds both objects. Without the feature this does nothing, so
//! default builds need no C toolchain.
//!
//! `CLANG` names the compiler (default `clang`); `BPF_CFLAGS` adds flags
//! (for instance `-I` to a libbpf include directory that is not in the
//! default search path).

use std::env;
use std::path::PathBuf;
use std::process::Command;

const SRC: &str = "src/trace/bpf/conntrack_drops.bpf.c";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-env-changed=BPF_CFLAGS");
    if env::var_os("CARGO_FEATURE_TRACE").is_none() {
        return;
    }
    println!("cargo:rerun-if-changed={SRC}");
    let dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    // Two objects from the one source: reading kernel memory with plain
    // loads (DIRECT_READS, Linux 6.17+) and with bpf_probe_read_kernel()
    // (any kernel the tracer supports); the loader picks one. The source
    // says why.
    for (name, defines) in [
        ("conntrack_drops.bpf.o", &["-DDIRECT_READS"][..]),
        ("conntrack_drops_compat.bpf.o", &[][..]),
    ] {
        compile(&dir.join(name), defines);
    }
}

fn compile(out: &std::path::Path, defines: &[&str]) {
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    let mut cmd = Command::new(&clang);
    // -g: BTF and CO-RE relocation records; -O2: the verifier needs it.
    cmd.args([
        "-target", "bpf", "-O2", "-g", "-Wall", "-Werror", "-c", SRC, "-o",
    ])
    .arg(out)
    .args(defines);
    if let Ok(flags) = env::var("BPF_CFLAGS") {
        cmd.args(flags.split_whitespace());
    }
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "{clang} failed ({s}) compiling {SRC}: the `trace` feature needs clang and the \
             libbpf headers (Debian: apt-get install clang libbpf-dev)"
        ),
        Err(e) => panic!(
            "cannot run {clang} ({e}): the `trace` feature needs clang and the libbpf \
             headers (Debian: apt-get install clang libbpf-dev); set CLANG to another compiler"
        ),
    }
}
