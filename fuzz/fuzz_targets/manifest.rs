//! Fuzz target: a golden case's `manifest.yaml`, read as `Manifest::load` reads it. Any input gives
//! a manifest or an error, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tkbench_harness::check::golden::Manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Manifest::parse(text, Path::new("fuzz/manifest.yaml"));
});
