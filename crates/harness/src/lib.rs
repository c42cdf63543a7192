//! tkbench-harness.
