//! Fuzz target: a checkpoint's `model.safetensors`, read against a GPT-2 or a Llama config (the
//! first byte picks which) as `Checkpoint::load` reads it. Any input gives a checkpoint or an error,
//! never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use tkbench_reference::{Checkpoint, Config, LlamaConfig};

const GPT2: &str = include_str!("../../golden/cases/tiny/checkpoint/config.json");
const LLAMA: &str = include_str!("../../golden/cases/llama-tiny/checkpoint/config.json");

fuzz_target!(|data: &[u8]| {
    let Some((&family, bytes)) = data.split_first() else {
        return;
    };
    let path = Path::new("fuzz/model.safetensors");
    if family % 2 == 0 {
        let config = Config::from_json_str(GPT2, path).expect("the tiny case's config is valid");
        let _ = Checkpoint::from_safetensors_bytes(config, bytes, path);
    } else {
        let config = LlamaConfig::from_json_str(LLAMA, path).expect("the llama-tiny case's config is valid");
        let _ = Checkpoint::from_safetensors_bytes(config, bytes, path);
    }
});
