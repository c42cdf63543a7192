//! The tokenizers: GPT-2's byte-pair tokenizer (`r50k_base`), embedded in the binary so that it
//! works offline, and a checkpoint's own `tokenizer.json` (the Llama family's tokenizers vary from
//! one model to the next).

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

/// A Hugging Face `tokenizer.json` (the format every Llama-family checkpoint ships its tokenizer
/// in), read with the `tokenizers` crate, offline.
pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    path: std::path::PathBuf,
}

impl HfTokenizer {
    /// The file name a checkpoint directory keeps its tokenizer under.
    pub const FILE: &'static str = "tokenizer.json";

    /// Reads `path`; a file that is not a tokenizer the crate reads is an error naming it.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|e| {
            Error::Tokenizer(format!(
                "{}: not a tokenizer.json that can be read: {e}",
                path.display()
            ))
        })?;
        Ok(Self {
            inner,
            path: path.to_owned(),
        })
    }

    /// The tokenizer beside a checkpoint, in `dir/tokenizer.json`, if there is one.
    pub fn beside(dir: &std::path::Path) -> Result<Option<Self>> {
        let path = dir.join(Self::FILE);
        if path.is_file() {
            Self::from_file(&path).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The token ids of `text` with the special tokens the tokenizer adds (a Llama tokenizer's
    /// beginning-of-sequence id), as `tokenizer(text)` gives them in Python.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", self.path.display())))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids`, special tokens included.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, false)
            .map_err(|e| Error::Tokenizer(format!("{}: {e}", self.path.display())))
    }
}
