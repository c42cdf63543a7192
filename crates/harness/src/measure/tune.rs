//! Kernel parameters chosen per machine: a short timed sweep of the blocked matmul's register tile
//! and cache blocking, kept per machine in a file, applied to a process before any kernel runs, and
//! recorded in reports.
//!
//! Why a sweep and not a rule from cache sizes: a fit-in-L1 rule picks a KC that the clock does not
//! (PERFORMANCE.md, "Matmul: the cache blocking tuned per machine"), since the prefetchers feed a b
//! sliver from L2 better than the rule assumes; the candidates span the plausible sizes and the
//! clock picks among them.

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tkbench_kernels::Isa;
use tkbench_kernels::matmul::MatmulDims;
use tkbench_kernels::matmul::blocked::{self, Blocking, MicroTile};

/// The version of the parameters file; a file of another version is tuned again (version 1 had no
/// register tile, so its sweep never timed one).
pub const SCHEMA: u32 = 2;

/// The environment variable through which a parent process hands its blocking to a child (the
/// criterion benches `cargo xtask bench` runs): `tile=…,kc=…,mc_slivers=…,nc=…`.
pub const ENV: &str = "TKBENCH_MATMUL_BLOCKING";

/// The blocked matmul's register tile at AVX-512 as files and reports store it (see
/// [`MicroTile`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum RegisterTile {
    /// 12 rows × 2 vectors; the tile of every report written before the tile was a parameter.
    #[default]
    #[serde(rename = "12x2")]
    Rows12,
    /// 6 rows × 4 vectors.
    #[serde(rename = "6x4")]
    Rows6,
}

impl From<MicroTile> for RegisterTile {
    fn from(tile: MicroTile) -> Self {
        match tile {
            MicroTile::Rows12 => RegisterTile::Rows12,
            MicroTile::Rows6 => RegisterTile::Rows6,
        }
    }
}

impl From<RegisterTile> for MicroTile {
    fn from(tile: RegisterTile) -> Self {
        match tile {
            RegisterTile::Rows12 => MicroTile::Rows12,
            RegisterTile::Rows6 => MicroTile::Rows6,
        }
    }
}

/// The blocked matmul's blocking as files and reports store it.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct MatmulBlocking {
    /// The register tile at AVX-512 (absent from reports of schema 1, which all ran 12 × 2).
    #[serde(default)]
    pub tile: RegisterTile,
    /// KC: the depth of a packed slice of k.
    pub kc: usize,
    /// MC in slivers of the micro-tile's rows.
    pub mc_slivers: usize,
    /// NC: the columns of a packed b panel.
    pub nc: usize,
}

impl From<Blocking> for MatmulBlocking {
    fn from(b: Blocking) -> Self {
        MatmulBlocking {
            tile: b.tile.into(),
            kc: b.kc,
            mc_slivers: b.mc_slivers,
            nc: b.nc,
        }
    }
}

impl From<MatmulBlocking> for Blocking {
    fn from(b: MatmulBlocking) -> Self {
        Blocking {
            tile: b.tile.into(),
            kc: b.kc,
            mc_slivers: b.mc_slivers,
            nc: b.nc,
        }
    }
}

/// How the parameters were chosen.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The built-in defaults (nothing was timed).
    Default,
    /// The timed sweep on this machine.
    Tuned,
    /// The environment variable [`ENV`], set by a parent process or by a user comparing blockings.
    Environment,
}

/// One candidate the sweep timed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Trial {
    /// The candidate.
    pub blocking: MatmulBlocking,
    /// Its best time over the sweep's rounds (of one call per shape), in milliseconds.
    pub best_ms: f64,
}

/// The kernel parameters of one machine: what a process runs with, and how they were found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Parameters {
    /// [`SCHEMA`].
    pub schema: u32,
    /// The machine they were chosen on (the probe's machine id).
    pub machine_id: String,
    /// The CPU family and model of that machine, so that another CPU under the same id is retuned.
    pub cpu_family: u32,
    /// See `cpu_family`.
    pub cpu_model: u32,
    /// How they were chosen.
    pub source: Source,
    /// The level the sweep ran at (the widest this CPU has).
    pub isa: String,
    /// The matmuls the sweep timed, `m×k×n` joined by ` + `, on one thread (one, in files of schema 1).
    pub shape: String,
    /// The blocked matmul's blocking.
    pub matmul_blocked: MatmulBlocking,
    /// Every candidate timed, in the order timed (empty for the defaults).
    pub trials: Vec<Trial>,
    /// When the sweep ran, UTC, RFC 3339.
    pub date: String,
}

impl Parameters {
    /// The built-in defaults, for a machine that has not been tuned (or a run that asks for them).
    pub fn defaults(machine_id: &str, cpu_family: u32, cpu_model: u32) -> Self {
        Parameters {
            schema: SCHEMA,
            machine_id: machine_id.to_owned(),
            cpu_family,
            cpu_model,
            source: Source::Default,
            isa: Isa::best().name().to_owned(),
            shape: String::new(),
            matmul_blocked: Blocking::DEFAULT.into(),
            trials: Vec::new(),
            date: String::new(),
        }
    }

    /// One line for logs and reports: the blocking and where it came from.
    pub fn summary(&self) -> String {
        let b = Blocking::from(self.matmul_blocked);
        let how = match self.source {
            Source::Default => "the built-in default".to_owned(),
            Source::Environment => format!("from {ENV}"),
            Source::Tuned => format!(
                "the fastest of {} candidates timed at {} on one thread at {}",
                self.trials.len(),
                self.shape,
                self.isa
            ),
        };
        format!("matmul blocked: {b} ({how})")
    }

    /// Fixes these parameters for every kernel call of this process (see [`blocked::configure`]).
    pub fn apply(&self) -> Result<(), String> {
        blocked::configure(self.matmul_blocked.into())
    }

    /// The value of [`ENV`] that hands these parameters to a child process.
    pub fn env_value(&self) -> String {
        let b = Blocking::from(self.matmul_blocked);
        format!(
            "tile={},kc={},mc_slivers={},nc={}",
            b.tile.name(),
            b.kc,
            b.mc_slivers,
            b.nc
        )
    }
}

/// Parses a value of [`ENV`]: `tile=…,kc=…,mc_slivers=…,nc=…`, every field once, the tile one of
/// [`MicroTile::ALL`]'s names and each size within [`Blocking::check`]'s limits.
pub fn parse_env_value(text: &str) -> Result<Blocking, String> {
    let mut fields: [(&str, Option<&str>); 4] = [("tile", None), ("kc", None), ("mc_slivers", None), ("nc", None)];
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| format!("{ENV}: `{item}` is not name=value"))?;
        let slot = fields
            .iter_mut()
            .find(|(field, _)| *field == name.trim())
            .ok_or_else(|| format!("{ENV}: `{name}` is not one of tile, kc, mc_slivers, nc"))?;
        if slot.1.is_some() {
            return Err(format!("{ENV}: `{name}` is given twice"));
        }
        slot.1 = Some(value.trim());
    }
    let get = |i: usize| {
        fields[i]
            .1
            .ok_or_else(|| format!("{ENV}: `{}` is missing", fields[i].0))
    };
    let size = |i: usize| {
        let value = get(i)?;
        value
            .parse::<usize>()
            .map_err(|_| format!("{ENV}: {} = `{value}` is not a size", fields[i].0))
    };
    let tile = get(0)?;
    let names: Vec<&str> = MicroTile::ALL.iter().map(|t| t.name()).collect();
    let tile = MicroTile::from_name(tile)
        .ok_or_else(|| format!("{ENV}: tile = `{tile}` is not one of {}", names.join(", ")))?;
    let blocking = Blocking {
        tile,
        kc: size(1)?,
        mc_slivers: size(2)?,
        nc: size(3)?,
    };
    blocking.check().map_err(|e| format!("{ENV}: {e}"))?;
    Ok(blocking)
}

/// Fixes the blocking [`ENV`] names, if it is set: what a child process of `cargo xtask bench`
/// calls before timing anything.
pub fn apply_env() -> Result<Option<Blocking>, String> {
    match std::env::var(ENV) {
        Ok(text) => {
            let blocking = parse_env_value(&text)?;
            blocked::configure(blocking)?;
            Ok(Some(blocking))
        }
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{ENV} is not UTF-8")),
    }
}

/// The sweep's stages: the register tile first (indices into [`MicroTile::ALL`]; it sets how many
/// loads feed the multiply-adds and how wide the b sliver is), then KC (the inner loop's reuse of
/// the b sliver), then MC at the best KC, then NC at all three. Each list holds the default, so the
/// sweep can only keep or beat it.
const TILES: &[usize] = &[0, 1];
/// See [`TILES`].
const KC: &[usize] = &[128, 160, 192, 224, 256, 320, 384];
/// See [`TILES`].
const MC_SLIVERS: &[usize] = &[6, 8, 12, 16, 24];
/// See [`TILES`].
const NC: &[usize] = &[512, 768, 1024, 1536, 2048, 3072];

/// Every blocking the sweep may choose, for tests that hold each to the gate.
pub fn candidates() -> Vec<Blocking> {
    let mut all = Vec::new();
    for tile in MicroTile::ALL {
        for &kc in KC {
            for &mc_slivers in MC_SLIVERS {
                for &nc in NC {
                    all.push(Blocking {
                        tile,
                        kc,
                        mc_slivers,
                        nc,
                    });
                }
            }
        }
    }
    all
}

/// The shapes the sweep times, one call each per candidate and trial, the times summed: the four
/// matmuls of a GPT-2-small layer at T = 512 (m × k × n: the qkv projection, attention's output
/// projection, the MLP's up- and down-projections). No one shape stands for the rest: the register
/// tile and KC each favour some of them by a few per cent and others not.
const SHAPES: [(usize, usize, usize); 4] = [(512, 768, 2304), (512, 768, 768), (512, 768, 3072), (512, 3072, 768)];

/// How much faster than the incumbent a candidate must be to replace it: below this, the machine's
/// noise would decide, and results should not change bits from one tuning to the next for nothing.
const MARGIN: f64 = 0.02;

/// Times the candidates at the widest level on one thread and keeps the fastest, reporting each
/// trial through `progress`. `rounds` passes over each stage's candidates, each timing one call per
/// candidate and shape, interleave the candidates so that a slow spell of the host does not fall on
/// one.
pub fn tune(
    machine_id: &str,
    cpu_family: u32,
    cpu_model: u32,
    rounds: usize,
    mut progress: impl FnMut(&Trial),
) -> Parameters {
    let isa = Isa::best();
    // Inputs for timing only: any finite values do; the gate checks the results elsewhere.
    let fill = |len: usize, seed: u32| -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761) | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    };
    // The dims and [a, b, c] of each shape.
    let mut buffers: Vec<(MatmulDims, [Vec<f32>; 3])> = SHAPES
        .iter()
        .zip(1u32..)
        .map(|(&(m, k, n), seed)| {
            let dims = MatmulDims::new(m, k, n);
            (
                dims,
                [fill(m * k, 2 * seed), fill(k * n, 2 * seed + 1), vec![0.0f32; m * n]],
            )
        })
        .collect();
    let mut time = |blocking: &Blocking| {
        let start = Instant::now();
        for (dims, [a, b, c]) in &mut buffers {
            blocked::matmul_with(blocking, dims, a, b, None, c, isa);
        }
        start.elapsed().as_secs_f64() * 1e3
    };
    let mut best = Blocking::DEFAULT;
    let mut trials: Vec<Trial> = Vec::new();
    type Stage = (&'static [usize], fn(&mut Blocking, usize));
    let stages: [Stage; 4] = [
        (TILES, |b, v| b.tile = MicroTile::ALL[v]),
        (KC, |b, v| b.kc = v),
        (MC_SLIVERS, |b, v| b.mc_slivers = v),
        (NC, |b, v| b.nc = v),
    ];
    for (values, set) in stages {
        let candidates: Vec<Blocking> = values
            .iter()
            .map(|&v| {
                let mut candidate = best;
                set(&mut candidate, v);
                candidate
            })
            .collect();
        // One untimed call each: page faults of the buffers and the first touch of the code.
        for candidate in &candidates {
            time(candidate);
        }
        let mut best_ms = vec![f64::INFINITY; candidates.len()];
        for _ in 0..rounds.max(1) {
            for (slot, candidate) in best_ms.iter_mut().zip(&candidates) {
                *slot = slot.min(time(candidate));
            }
        }
        let incumbent = candidates
            .iter()
            .position(|c| *c == best)
            .expect("each stage holds the incumbent");
        let mut chosen = incumbent;
        for (i, &ms) in best_ms.iter().enumerate() {
            if ms < best_ms[chosen] && ms < best_ms[incumbent] * (1.0 - MARGIN) {
                chosen = i;
            }
        }
        for (candidate, &ms) in candidates.iter().zip(&best_ms) {
            let trial = Trial {
                blocking: (*candidate).into(),
                best_ms: ms,
            };
            progress(&trial);
            trials.push(trial);
        }
        best = candidates[chosen];
    }
    Parameters {
        schema: SCHEMA,
        machine_id: machine_id.to_owned(),
        cpu_family,
        cpu_model,
        source: Source::Tuned,
        isa: isa.name().to_owned(),
        shape: SHAPES.map(|(m, k, n)| format!("{m}×{k}×{n}")).join(" + "),
        matmul_blocked: best.into(),
        trials,
        date: super::probe::utc_now(),
    }
}

/// Why a parameters file was not used.
#[derive(Debug, Clone, PartialEq)]
pub enum Stale {
    /// There is no file.
    Missing,
    /// The file could not be read or parsed; the text names the file and the fault.
    Unreadable(String),
    /// The file was written by another schema, machine or CPU, or holds a blocking out of bounds.
    Other(String),
}

/// The parameters stored at `path` for this machine, or why they cannot be used.
pub fn load(path: &Path, machine_id: &str, cpu_family: u32, cpu_model: u32) -> Result<Parameters, Stale> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Stale::Missing),
        Err(e) => return Err(Stale::Unreadable(format!("{}: {e}", path.display()))),
    };
    let parameters: Parameters =
        serde_json::from_str(&text).map_err(|e| Stale::Unreadable(format!("{}: {e}", path.display())))?;
    let describe = |what: String| Stale::Other(format!("{}: {what}", path.display()));
    if parameters.schema != SCHEMA {
        return Err(describe(format!(
            "schema {} (this tkbench writes {SCHEMA})",
            parameters.schema
        )));
    }
    if parameters.machine_id != machine_id || parameters.cpu_family != cpu_family || parameters.cpu_model != cpu_model {
        return Err(describe(format!(
            "chosen on {} (family {:x}h model {:x}h), not on this {machine_id} (family {cpu_family:x}h model {cpu_model:x}h)",
            parameters.machine_id, parameters.cpu_family, parameters.cpu_model
        )));
    }
    Blocking::from(parameters.matmul_blocked).check().map_err(describe)?;
    Ok(parameters)
}

/// Writes `parameters` to `path` (creating its folder), through a temporary file so that a run cut
/// short leaves no half-written file behind.
pub fn save(path: &Path, parameters: &Parameters) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let staging = path.with_extension("json.partial");
    let text = serde_json::to_string_pretty(parameters).map_err(std::io::Error::other)?;
    std::fs::write(&staging, text + "\n")?;
    std::fs::rename(&staging, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_value_round_trips_and_refuses_what_is_malformed() {
        let parameters = Parameters::defaults("m", 0, 0);
        assert_eq!(parse_env_value(&parameters.env_value()), Ok(Blocking::DEFAULT));
        assert_eq!(
            parse_env_value("nc=3, kc=5 ,mc_slivers=2,tile=6x4"),
            Ok(Blocking {
                tile: MicroTile::Rows6,
                kc: 5,
                mc_slivers: 2,
                nc: 3
            })
        );
        for (text, fault) in [
            ("tile=12x2,kc=1,mc_slivers=1", "`nc` is missing"),
            ("kc=1,mc_slivers=1,nc=1", "`tile` is missing"),
            ("tile=12x2,kc=1,kc=2,mc_slivers=1,nc=1", "`kc` is given twice"),
            ("tile=12x2,kc=0,mc_slivers=1,nc=1", "kc = 0 is outside"),
            ("tile=12x2,kc=1,mc_slivers=1,nc=100000", "nc = 100000 is outside"),
            ("tile=12x2,kc=1,mr=1,nc=1", "`mr` is not one of"),
            ("tile=12x2,kc=x,mc_slivers=1,nc=1", "kc = `x` is not a size"),
            (
                "tile=8x3,kc=1,mc_slivers=1,nc=1",
                "tile = `8x3` is not one of 12x2, 6x4",
            ),
            ("kc", "`kc` is not name=value"),
        ] {
            let error = parse_env_value(text).expect_err(text);
            assert!(error.contains(fault), "{text}: {error}");
            assert!(error.starts_with(ENV), "{text}: {error}");
        }
    }

    #[test]
    fn every_stage_holds_the_default_so_the_sweep_can_keep_it() {
        assert_eq!(MicroTile::ALL[TILES[0]], Blocking::DEFAULT.tile);
        assert_eq!(TILES.len(), MicroTile::ALL.len());
        assert!(KC.contains(&Blocking::DEFAULT.kc));
        assert!(MC_SLIVERS.contains(&Blocking::DEFAULT.mc_slivers));
        assert!(NC.contains(&Blocking::DEFAULT.nc));
        for candidate in candidates() {
            assert_eq!(candidate.check(), Ok(()), "{candidate}");
        }
    }

    #[test]
    fn a_stored_file_is_used_only_on_the_machine_it_was_chosen_on() {
        let dir = std::env::temp_dir().join(format!("tkbench-tune-{}", std::process::id()));
        let path = dir.join("parameters.json");
        assert_eq!(load(&path, "m", 0x19, 0x11), Err(Stale::Missing));
        let mut parameters = Parameters::defaults("m", 0x19, 0x11);
        parameters.matmul_blocked.kc = 256;
        save(&path, &parameters).expect("writes the file");
        assert_eq!(load(&path, "m", 0x19, 0x11), Ok(parameters.clone()));
        assert!(matches!(load(&path, "other", 0x19, 0x11), Err(Stale::Other(e)) if e.contains("not on this other")));
        assert!(matches!(load(&path, "m", 0x1a, 0x11), Err(Stale::Other(_))));
        parameters.matmul_blocked.kc = 0;
        save(&path, &parameters).expect("writes the file");
        assert!(matches!(load(&path, "m", 0x19, 0x11), Err(Stale::Other(e)) if e.contains("kc = 0")));
        std::fs::write(&path, "{\"schema\": 1, \"machine_id\"").expect("writes the file");
        assert!(matches!(load(&path, "m", 0x19, 0x11), Err(Stale::Unreadable(e)) if e.contains("parameters.json")));
        std::fs::remove_dir_all(&dir).expect("removes the folder");
    }
}
