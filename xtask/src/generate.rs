//! `cargo xtask generate`: the greedy continuation of a prompt, as ids and as text.

use anyhow::Result;
use tkbench_harness::check::golden::AnyCheckpoint;
use tkbench_reference::model::greedy;
use tkbench_reference::{Family, HfTokenizer, Tokenizer};

use crate::Outcome;
use crate::logits::Precision;
use crate::prompt::PromptArgs;

/// Arguments of `cargo xtask generate`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    prompt: PromptArgs,
    /// How many tokens to generate.
    #[arg(short = 'n', long = "num-tokens", value_name = "N", default_value_t = 16)]
    n: usize,
    /// The precision the model runs in.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    dtype: Precision,
}

/// Runs `cargo xtask generate`.
pub fn run(args: Args) -> Result<Outcome> {
    let family = Family::of_dir(&args.prompt.model)?;
    let prompt = args.prompt.token_ids_for(family)?;
    let checkpoint = AnyCheckpoint::load(&args.prompt.model)?;
    let generated = match args.dtype {
        Precision::F32 => greedy(&*checkpoint.reference::<f32>(), &prompt, args.n)?,
        Precision::F64 => greedy(&*checkpoint.reference::<f64>(), &prompt, args.n)?,
    };
    let vocab_size = checkpoint.config().vocab_size();
    let ids = |ids: &[u32]| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    println!("prompt ids:    {}", ids(&prompt));
    println!("generated ids: {}", ids(&generated));
    if family == Family::Gpt2 && vocab_size == Tokenizer::VOCAB_SIZE {
        let tokenizer = Tokenizer::gpt2();
        println!("prompt text:    {:?}", tokenizer.decode(&prompt)?);
        println!("generated text: {:?}", tokenizer.decode(&generated)?);
    } else if family == Family::Gpt2 {
        println!(
            "(no text: the model's vocab_size is {vocab_size}, not the GPT-2 tokenizer's {})",
            Tokenizer::VOCAB_SIZE
        );
    } else if let Some(tokenizer) = HfTokenizer::beside(&args.prompt.model)? {
        println!("prompt text:    {:?}", tokenizer.decode(&prompt)?);
        println!("generated text: {:?}", tokenizer.decode(&generated)?);
    } else {
        println!(
            "(no text: {} has no {}, the tokenizer of a {family} model)",
            args.prompt.model.display(),
            HfTokenizer::FILE
        );
    }
    Ok(Outcome::Pass)
}
