//! Stable-toolchain fuzzing harness: runs every target's check over its
//! corpus (`corpus/<target>/`, seeded from the fixtures by `seed.sh`) and
//! over generated inputs: random bytes and deterministic mutations (bit
//! flips, truncations, splices, byte insertions) of each corpus file.
//!
//! `FUZZ_REPLAY_ITERS` sets the number of generated inputs per target
//! (default 20000; a twentieth of it for the targets that build a
//! directory tree per input, `conntrack_kit_fuzz::TREE_TARGETS`).

use std::path::Path;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    if seeds.is_empty() || rng.below(8) == 0 {
        let len = rng.below(512);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut d = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        match rng.below(5) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 => d.truncate(rng.below(d.len() + 1)),
            2 if !d.is_empty() => {
                let i = rng.below(d.len());
                d.insert(i, rng.next() as u8);
            }
            3 => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(d.len() + 1);
                let from = rng.below(other.len() + 1);
                d.truncate(cut);
                d.extend_from_slice(&other[from..]);
            }
            _ if !d.is_empty() => {
                // Interesting values where a length or number may sit.
                let i = rng.below(d.len());
                d[i] = [0, 0xff, 0x7f, 0x80, b'\n', b' ', b'0', b'='][rng.below(8)];
            }
            _ => {}
        }
    }
    d
}

#[test]
fn replay_corpus_and_generated_inputs() {
    let iters: usize = std::env::var("FUZZ_REPLAY_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    for &(name, check) in conntrack_kit_fuzz::TARGETS {
        let iters = if conntrack_kit_fuzz::TREE_TARGETS.contains(&name) {
            iters.div_ceil(20)
        } else {
            iters
        };
        let seeds = corpus(name);
        assert!(
            !seeds.is_empty(),
            "corpus/{name} is empty: run fuzz/seed.sh"
        );
        for s in &seeds {
            check(s);
        }
        let start = std::time::Instant::now();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
        for _ in 0..iters {
            check(&mutate(&mut rng, &seeds));
        }
        println!(
            "{name}: {} corpus files, {iters} generated inputs in {:.1} s",
            seeds.len(),
            start.elapsed().as_secs_f64()
        );
    }
}
