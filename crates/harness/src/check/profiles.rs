//! The op-level gate's input profiles: `checks/profiles.yaml` names, per op, the profiles
//! ([`Profile`]) its variants are checked on. An op the manifest leaves out is checked on every
//! profile it takes; a manifest that names an unknown op or profile, or one the op does not take, is
//! refused with the file and the field at fault.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::check::golden::workspace_root;
use crate::ops::{AnyOp, OPS, Profile};

/// The manifest's schema version.
pub const SCHEMA: u32 = 1;

/// The manifest the gate reads unless told otherwise.
pub fn default_path() -> PathBuf {
    workspace_root().join("checks").join("profiles.yaml")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    schema: u32,
    profiles: BTreeMap<String, Vec<String>>,
}

/// The profiles of each op: those a manifest lists, or all the op takes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profiles {
    listed: BTreeMap<&'static str, Vec<Profile>>,
}

impl Profiles {
    /// Every op on every profile it takes.
    pub fn every() -> Self {
        Self::default()
    }

    /// The profiles of the op `op`.
    pub fn of(&self, op: &dyn AnyOp) -> Vec<Profile> {
        self.listed
            .get(op.name())
            .cloned()
            .unwrap_or_else(|| op.profiles().to_vec())
    }

    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses and validates a manifest's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: File = serde_yaml::from_str(text).map_err(|e| format!("not a profiles manifest: {e}"))?;
        if file.schema != SCHEMA {
            return Err(format!(
                "field `schema`: version {} (this tkbench reads version {SCHEMA})",
                file.schema
            ));
        }
        let mut listed = BTreeMap::new();
        for (name, profiles) in file.profiles {
            let op = crate::ops::op_named(&name).map_err(|e| format!("field `profiles`: {e}"))?;
            let field = format!("field `profiles.{name}`");
            if profiles.is_empty() {
                return Err(format!("{field}: no profile listed"));
            }
            let mut chosen = Vec::new();
            for profile in &profiles {
                let profile = Profile::from_name(profile).map_err(|e| format!("{field}: {e}"))?;
                if !op.profiles().contains(&profile) {
                    return Err(format!(
                        "{field}: {name} does not take the profile `{profile}` (it takes {})",
                        taken(op)
                    ));
                }
                if !chosen.contains(&profile) {
                    chosen.push(profile);
                }
            }
            listed.insert(op.name(), chosen);
        }
        Ok(Self { listed })
    }
}

/// The profiles `op` takes, as a list.
fn taken(op: &dyn AnyOp) -> String {
    op.profiles().iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
}

/// Every op with the profiles it takes, one line each, for help and listings.
pub fn listing() -> String {
    OPS.iter()
        .map(|op| format!("{:<10} {}", op.name(), taken(*op)))
        .collect::<Vec<_>>()
        .join("\n")
}
