//! Measurement: the machine probe (identity, FMA peaks, bandwidths), the kernel parameters tuned per
//! machine, the work of a call, the timed calls the criterion benches run, the versioned report
//! schema with its roofline, and its Markdown and SVG renderings.

pub mod bench;
pub mod probe;
pub mod report;
pub mod svg;
pub mod tune;
pub mod work;
