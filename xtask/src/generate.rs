//! `cargo xtask generate`: the greedy continuation of a prompt, as ids and as text.

use anyhow::Result;
use tkbench_reference::{Checkpoint, Gpt2, Tokenizer};

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
    let prompt = args.prompt.token_ids()?;
    let checkpoint = Checkpoint::load(&args.prompt.model)?;
    let generated = match args.dtype {
        Precision::F32 => Gpt2::<f32>::from_checkpoint(&checkpoint).generate(&prompt, args.n)?,
        Precision::F64 => Gpt2::<f64>::from_checkpoint(&checkpoint).generate(&prompt, args.n)?,
    };
    let ids = |ids: &[u32]| ids.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
    println!("prompt ids:    {}", ids(&prompt));
    println!("generated ids: {}", ids(&generated));
    if checkpoint.config().vocab_size == Tokenizer::VOCAB_SIZE {
        let tokenizer = Tokenizer::gpt2();
        println!("prompt text:    {:?}", tokenizer.decode(&prompt)?);
        println!("generated text: {:?}", tokenizer.decode(&generated)?);
    } else {
        println!(
            "(no text: the model's vocab_size is {}, not the GPT-2 tokenizer's {})",
            checkpoint.config().vocab_size,
            Tokenizer::VOCAB_SIZE
        );
    }
    Ok(Outcome::Pass)
}
