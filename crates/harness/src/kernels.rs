//! Kernel sets: one registered variant per op, named on the command line as `fastest`, `scalar`, or
//! `op=variant,...` (ops not named stay scalar; `fastest,op=variant` starts from the fastest set).

use tkbench_kernels::{Kind, Op, Variant, fastest, variants_of};

/// One variant per op.
#[derive(Debug, Clone, Copy)]
pub struct KernelSet {
    variants: [Variant; 6],
}

fn index(op: Op) -> usize {
    Op::ALL.iter().position(|&o| o == op).expect("every op is in Op::ALL")
}

fn scalar_of(op: Op) -> Variant {
    *variants_of(op)
        .find(|v| v.kind == Kind::Scalar)
        .expect("every op has a scalar variant")
}

impl KernelSet {
    /// Every op scalar: the readable baseline.
    pub fn scalar() -> Self {
        Self {
            variants: Op::ALL.map(scalar_of),
        }
    }

    /// The fastest variant of every op.
    pub fn fastest() -> Self {
        Self {
            variants: Op::ALL.map(|op| *fastest(op)),
        }
    }

    /// This set with `variant` in place of its op's variant.
    pub fn with(mut self, variant: Variant) -> Self {
        self.variants[index(variant.op())] = variant;
        self
    }

    /// The variant of `op`.
    pub fn get(&self, op: Op) -> &Variant {
        &self.variants[index(op)]
    }

    /// Whether every op is scalar.
    pub fn is_scalar(&self) -> bool {
        self.variants.iter().all(|v| v.kind == Kind::Scalar)
    }

    /// Whether any variant dispatches on the ISA level (so the set is worth running at each level).
    pub fn dispatches(&self) -> bool {
        self.variants
            .iter()
            .any(|v| v.isa == tkbench_kernels::IsaSupport::Dispatch)
    }

    /// The shortest spec that parses back to this set: `scalar`, `fastest`, or the non-scalar ops.
    pub fn spec(&self) -> String {
        if self.is_scalar() {
            return "scalar".into();
        }
        let fastest = Self::fastest();
        if Op::ALL.iter().all(|&op| self.get(op).name == fastest.get(op).name) {
            return "fastest".into();
        }
        Op::ALL
            .iter()
            .filter(|&&op| self.get(op).kind != Kind::Scalar)
            .map(|&op| format!("{}={}", op.name(), self.get(op).name))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Parses a spec: `scalar`, `fastest`, `op=variant,...`, or `fastest,op=variant,...`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut set = Self::scalar();
        for (i, item) in spec.split(',').map(str::trim).enumerate() {
            match item {
                "scalar" if i == 0 => {}
                "fastest" if i == 0 => set = Self::fastest(),
                _ => {
                    let (op_name, variant_name) = item
                        .split_once('=')
                        .ok_or_else(|| format!("`{item}` is not op=variant (or a leading `fastest` / `scalar`)"))?;
                    let op = Op::from_name(op_name.trim()).ok_or_else(|| {
                        format!(
                            "`{op_name}` is not an op; ops are {}",
                            Op::ALL.map(|o| o.name()).join(", ")
                        )
                    })?;
                    let variant = variants_of(op).find(|v| v.name == variant_name.trim()).ok_or_else(|| {
                        let names: Vec<_> = variants_of(op).map(|v| v.name).collect();
                        format!(
                            "{} has no variant `{variant_name}`; it has {}",
                            op.name(),
                            names.join(", ")
                        )
                    })?;
                    set = set.with(*variant);
                }
            }
        }
        Ok(set)
    }
}
