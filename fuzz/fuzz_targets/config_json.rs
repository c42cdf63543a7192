//! Fuzz target: a checkpoint's `config.json`, read as its family is found and as each family's
//! config. Any input gives a config or an error, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tkbench_reference::{Config, Family, LlamaConfig};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz/config.json");
    let _ = Family::of_json_str(text, path);
    let _ = Config::from_json_str(text, path);
    let _ = LlamaConfig::from_json_str(text, path);
});
