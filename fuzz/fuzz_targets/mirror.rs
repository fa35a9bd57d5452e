#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| conntrack_kit_fuzz::check_mirror(data));
