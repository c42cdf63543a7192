//! The GPT-2 byte-pair tokenizer (`r50k_base`), embedded in the binary so that it works offline.

use tiktoken_rs::CoreBPE;

use crate::error::{Error, Result};

/// The GPT-2 tokenizer: "Hello world" → [15496, 995].
pub struct Tokenizer {
    bpe: &'static CoreBPE,
}

impl Tokenizer {
    /// The GPT-2 vocabulary size: ids 0..50257.
    pub const VOCAB_SIZE: usize = 50257;

    /// The GPT-2 tokenizer (built once per process).
    pub fn gpt2() -> Self {
        Self {
            bpe: tiktoken_rs::r50k_base_singleton(),
        }
    }

    /// The token ids of `text`; `<|endoftext|>` becomes its special id 50256, as Hugging Face's
    /// GPT-2 tokenizer does.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.bpe.encode_with_special_tokens(text)
    }

    /// The text of `ids`; byte sequences that are not valid UTF-8 (a token boundary inside a
    /// character) are shown as U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        if let Some((index, &id)) = ids.iter().enumerate().find(|&(_, &id)| id as usize >= Self::VOCAB_SIZE) {
            return Err(Error::TokenOutOfRange {
                index,
                id,
                vocab_size: Self::VOCAB_SIZE,
            });
        }
        let bytes = self
            .bpe
            .decode_bytes(ids)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}
