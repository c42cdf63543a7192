//! Fuzz target: a plugin's table of variants (`include/tkbench.h`), checked as `--plugin` checks it
//! before adding anything. The input is split at 0xFF bytes into fields, four per entry: op, name,
//! function (non-NULL when its first byte is odd) and ISA, a field of one 0xFE byte standing for
//! NULL. Any table is accepted or refused with a message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tkbench_harness::plugin::{RawEntry, check_entries};
use tkbench_harness::registry::Registry;

/// A field's bytes, `None` for the NULL marker.
fn field(bytes: &[u8]) -> Option<Vec<u8>> {
    (bytes != [0xFE]).then(|| bytes.to_vec())
}

fuzz_target!(|data: &[u8]| {
    let fields: Vec<&[u8]> = data.split(|&b| b == 0xFF).collect();
    let entries: Vec<RawEntry> = fields
        .chunks(4)
        .map(|f| RawEntry {
            op: f.first().and_then(|b| field(b)),
            name: f.get(1).and_then(|b| field(b)),
            has_function: f.get(2).and_then(|b| b.first()).is_some_and(|b| b % 2 == 1),
            isa: f.get(3).and_then(|b| field(b)),
        })
        .collect();
    let registry = Registry::builtin();
    if let Ok(checked) = check_entries(&entries, &registry) {
        assert_eq!(checked.len(), entries.len(), "every entry of an accepted table is kept");
    }
});
