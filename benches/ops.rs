//! Op benches: every variant of every op (or of `TKBENCH_OP`) on its definition's bench shapes, at
//! GPT-2-small dimensions.

use criterion::{criterion_group, criterion_main};

criterion_group!(name = benches; config = tkbench_benches::config(); targets = tkbench_benches::bench_ops);
criterion_main!(benches);
