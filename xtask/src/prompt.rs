//! The prompt options shared by `logits` and `generate`: token ids or text, and the model directory.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use tkbench_reference::{Family, HfTokenizer, Tokenizer};

/// A model directory and a prompt given as ids or as text.
#[derive(clap::Args)]
pub struct PromptArgs {
    /// A Hugging Face checkpoint directory (config.json + model.safetensors) of GPT-2 or of the
    /// Llama family.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// The prompt as comma-separated token ids, e.g. 15496,995.
    #[arg(long, value_name = "IDS", conflicts_with = "text", required_unless_present = "text")]
    pub tokens: Option<String>,
    /// The prompt as text: encoded with the GPT-2 tokenizer (r50k_base) for a GPT-2 model, with the
    /// checkpoint's own tokenizer.json for a Llama-family one.
    #[arg(long, value_name = "TEXT")]
    pub text: Option<String>,
}

impl PromptArgs {
    /// The prompt's token ids.
    pub fn token_ids(&self) -> Result<Vec<u32>> {
        match (&self.tokens, &self.text) {
            (Some(list), _) => parse_token_list(list),
            (None, Some(text)) => Ok(Tokenizer::gpt2().encode(text)),
            (None, None) => bail!("give the prompt with --tokens or --text"),
        }
    }

    /// The prompt's token ids for a model of `family`: text goes through the GPT-2 tokenizer for
    /// GPT-2 and through the checkpoint's `tokenizer.json` otherwise, which must then be there.
    pub fn token_ids_for(&self, family: Family) -> Result<Vec<u32>> {
        match (&self.text, family) {
            (Some(text), Family::Llama) => Ok(self.own_tokenizer()?.encode(text)?),
            _ => self.token_ids(),
        }
    }

    /// The checkpoint's own tokenizer, or an error saying that `--text` needs one.
    pub fn own_tokenizer(&self) -> Result<HfTokenizer> {
        HfTokenizer::beside(&self.model)?.ok_or_else(|| {
            anyhow::anyhow!(
                "--text: {} has no {}; this model's tokenizer is its own: put its {} beside config.json, or give the prompt as --tokens",
                self.model.display(),
                HfTokenizer::FILE,
                HfTokenizer::FILE
            )
        })
    }
}

/// Parses `1, 2,3` into ids; an empty list is allowed here and refused by the model.
pub fn parse_token_list(list: &str) -> Result<Vec<u32>> {
    if list.trim().is_empty() {
        return Ok(Vec::new());
    }
    list.split(',')
        .enumerate()
        .map(|(i, item)| {
            let item = item.trim();
            item.parse::<u32>()
                .with_context(|| format!("--tokens: item {i} `{item}` is not a token id (a non-negative integer)"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_token_list;

    #[test]
    fn parses_ids_with_spaces() {
        assert_eq!(parse_token_list("15496, 995,1").unwrap(), vec![15496, 995, 1]);
    }

    #[test]
    fn names_the_bad_item() {
        let error = parse_token_list("1,x,3").unwrap_err().to_string();
        assert!(error.contains("item 1 `x`"), "{error}");
        assert!(parse_token_list("-1").is_err());
    }

    #[test]
    fn empty_list_is_empty() {
        assert!(parse_token_list(" ").unwrap().is_empty());
    }
}
