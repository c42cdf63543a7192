//! `cargo xtask generate`: the greedy continuation of a prompt, as ids and as text.

use anyhow::Result;
use tkbench_reference::{Checkpoint, Config, Family, Gpt2, HfTokenizer, Llama, LlamaConfig, Tokenizer};

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
    let (generated, vocab_size) = match family {
        Family::Gpt2 => {
            let checkpoint = Checkpoint::<Config>::load(&args.prompt.model)?;
            let generated = match args.dtype {
                Precision::F32 => Gpt2::<f32>::from_checkpoint(&checkpoint).generate(&prompt, args.n)?,
                Precision::F64 => Gpt2::<f64>::from_checkpoint(&checkpoint).generate(&prompt, args.n)?,
            };
            (generated, checkpoint.config().vocab_size)
        }
        Family::Llama => {
            let checkpoint = Checkpoint::<LlamaConfig>::load(&args.prompt.model)?;
            let generated = match args.dtype {
                Precision::F32 => Llama::<f32>::from_checkpoint(&checkpoint).generate(&prompt, args.n)?,
                Precision::F64 => Llama::<f64>::from_checkpoint(&checkpoint).generate(&prompt, args.n)?,
            };
            (generated, checkpoint.config().vocab_size)
        }
    };
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
