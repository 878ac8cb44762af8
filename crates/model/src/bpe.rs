//! Training a small byte-level BPE tokenizer (the built-in default tokenizer).

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::normalizers::unicode::NFC;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior};

use crate::error::{ModelError, Result};
use crate::tokenizer::{Tokenizer, ENDOFTEXT, IM_END, IM_START};

/// ChatML special tokens (ids 0, 1, 2 of a trained tokenizer).
pub const CHATML_SPECIAL_TOKENS: [&str; 3] = [ENDOFTEXT, IM_START, IM_END];

/// Reasoning / tool-call tags: single ids, decoded back into the text (not
/// special, so `decode(.., skip_special_tokens = true)` keeps them).
pub const TOOL_TAG_TOKENS: [&str; 4] = ["<think>", "</think>", "<tool_call>", "</tool_call>"];

/// Qwen2's pre-tokenization regex (contractions, letter runs, single digits,
/// punctuation runs, newlines, whitespace), as in its tokenizer.json.
pub const QWEN2_PRETOKENIZE_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// [`QWEN2_PRETOKENIZE_REGEX`] with letter runs kept apart from the space
/// or punctuation before them: `in Oslo` and `"Oslo"` both hold the token
/// `Oslo`. Under Qwen2's regex the first is ` Oslo` and the second `Oslo`,
/// two unrelated ids, so a small model must learn every value's pair before
/// it can copy it from a query into a call's arguments. Costs about one
/// token per word (a third more prompt tokens on the synthetic tasks).
pub const WORDS_APART_PRETOKENIZE_REGEX: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// How text is split before BPE merges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PreTokenizer {
    /// Qwen2's split ([`QWEN2_PRETOKENIZE_REGEX`]).
    #[default]
    Qwen2,
    /// Letter runs apart from what precedes them
    /// ([`WORDS_APART_PRETOKENIZE_REGEX`]).
    WordsApart,
}

impl PreTokenizer {
    /// The split regex.
    pub fn regex(self) -> &'static str {
        match self {
            PreTokenizer::Qwen2 => QWEN2_PRETOKENIZE_REGEX,
            PreTokenizer::WordsApart => WORDS_APART_PRETOKENIZE_REGEX,
        }
    }
}

/// A tokenizer with Qwen2's pipeline (NFC normalizer, regex split, byte-level
/// pre-tokenizer and decoder) around `model`, splitting with `split`'s
/// regex. transformers' `Qwen2Tokenizer` rebuilds exactly this pipeline with
/// [`PreTokenizer::Qwen2`], so directories saved with such a tokenizer
/// tokenize identically in Python; with [`PreTokenizer::WordsApart`] load
/// them as a fast tokenizer (`tokenizer.json` carries the regex).
fn qwen2_pipeline(model: ModelWrapper, split: PreTokenizer) -> Result<tokenizers::Tokenizer> {
    let split = Split::new(
        SplitPattern::Regex(split.regex().to_string()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| ModelError::Tokenizer {
        context: "pre-tokenizer regex".into(),
        message: e.to_string(),
    })?;
    let mut tok = tokenizers::Tokenizer::new(model);
    tok.with_normalizer(Some(NFC))
        .map_err(|e| ModelError::Tokenizer {
            context: "normalizer".into(),
            message: e.to_string(),
        })?;
    tok.with_pre_tokenizer(Some(Sequence::new(vec![
        split.into(),
        ByteLevel::new(false, false, false).into(),
    ])));
    tok.with_decoder(Some(ByteLevelDecoder::default()));
    Ok(tok)
}

/// Settings of [`train_bpe_tokenizer_with`].
#[derive(Debug, Clone, PartialEq)]
pub struct BpeOptions {
    /// Total vocabulary size (special and added tokens and the 256 byte
    /// symbols included); training stops earlier when no pair occurs
    /// `min_frequency` times.
    pub vocab_size: usize,
    /// Special tokens, in id order from 0.
    pub special_tokens: Vec<String>,
    /// Non-special added tokens (single ids, kept when decoding).
    pub added_tokens: Vec<String>,
    /// Minimum count of a pair to be merged.
    pub min_frequency: u64,
    /// How text is split before merging.
    pub pre_tokenizer: PreTokenizer,
}

impl BpeOptions {
    /// ChatML special tokens, the tool tags, `min_frequency` 2.
    pub fn chatml(vocab_size: usize) -> Self {
        BpeOptions {
            vocab_size,
            special_tokens: CHATML_SPECIAL_TOKENS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            added_tokens: TOOL_TAG_TOKENS.iter().map(|s| s.to_string()).collect(),
            min_frequency: 2,
            pre_tokenizer: PreTokenizer::Qwen2,
        }
    }
}

/// Trains a byte-level BPE tokenizer on `texts` with the ChatML special
/// tokens (`<|endoftext|>` = 0 = pad, `<|im_start|>` = 1, `<|im_end|>` = 2 =
/// eos), the tool tags `<think>`, `</think>`, `<tool_call>`, `</tool_call>`,
/// and any `extra_special_tokens` (one of the tool tags among them is
/// made special instead of a plain added token). Qwen2's text pipeline (NFC, its split
/// regex, byte-level BPE): `decode(encode(t)) == t` for every NFC-normalised
/// string (any bytes are representable). Deterministic: the same texts always
/// give the same tokenizer.
pub fn train_bpe_tokenizer<S: AsRef<str>>(
    texts: &[S],
    vocab_size: usize,
    extra_special_tokens: &[&str],
) -> Result<Tokenizer> {
    let mut opts = BpeOptions::chatml(vocab_size);
    for t in extra_special_tokens {
        if !opts.special_tokens.iter().any(|s| s == t) {
            // Registered once, as special: also added as a plain token, it
            // was special in memory and not in the saved file.
            opts.added_tokens.retain(|a| a != t);
            opts.special_tokens.push(t.to_string());
        }
    }
    train_bpe_tokenizer_with(texts, &opts)
}

/// Splits `text` around occurrences of any of `tokens` (which are dropped).
fn split_out<'a>(text: &'a str, tokens: &[String], out: &mut Vec<&'a str>) {
    let mut rest = text;
    loop {
        let next = tokens
            .iter()
            .filter(|t| !t.is_empty())
            .filter_map(|t| rest.find(t.as_str()).map(|p| (p, t.len())))
            .min();
        match next {
            Some((p, len)) => {
                if p > 0 {
                    out.push(&rest[..p]);
                }
                rest = &rest[p + len..];
            }
            None => {
                if !rest.is_empty() {
                    out.push(rest);
                }
                return;
            }
        }
    }
}

/// [`train_bpe_tokenizer`] with explicit options.
pub fn train_bpe_tokenizer_with<S: AsRef<str>>(
    texts: &[S],
    opts: &BpeOptions,
) -> Result<Tokenizer> {
    let err = |e: tokenizers::Error| ModelError::Tokenizer {
        context: "training BPE".into(),
        message: e.to_string(),
    };
    let reserved: Vec<String> = opts
        .special_tokens
        .iter()
        .chain(&opts.added_tokens)
        .cloned()
        .collect();
    if let Some((i, t)) = reserved
        .iter()
        .enumerate()
        .find(|(i, t)| reserved[..*i].contains(t))
    {
        let what = if i >= opts.special_tokens.len() && opts.special_tokens.contains(t) {
            "both a special and an added token"
        } else {
            "listed twice"
        };
        return Err(ModelError::input(format!(
            "BPE reserved token {t:?} is {what}: each token is reserved once (a special token \
             is dropped by decoding with skip_special_tokens, an added one is kept)"
        )));
    }
    let alphabet = ByteLevel::alphabet();
    let min_vocab = alphabet.len() + reserved.len();
    if opts.vocab_size < min_vocab {
        return Err(ModelError::input(format!(
            "BPE vocab_size {} is below the {min_vocab} byte symbols and reserved tokens",
            opts.vocab_size
        )));
    }
    // Reserved tokens take the first ids of the BPE vocabulary; they are cut
    // out of the corpus so no merge is spent on their pieces.
    let trainer = BpeTrainerBuilder::new()
        .vocab_size(opts.vocab_size)
        .min_frequency(opts.min_frequency)
        .show_progress(false)
        .special_tokens(
            reserved
                .iter()
                .map(|t| AddedToken::from(t.clone(), true))
                .collect(),
        )
        .initial_alphabet(alphabet.into_iter().collect())
        .build();
    let mut trainer: TrainerWrapper = trainer.into();
    let mut pieces = Vec::new();
    for t in texts {
        split_out(t.as_ref(), &reserved, &mut pieces);
    }
    let mut trained = qwen2_pipeline(BPE::default().into(), opts.pre_tokenizer)?;
    trained.train(&mut trainer, pieces.iter()).map_err(err)?;
    // `train` registers every reserved token as special; start again from the
    // trained model so the tool tags can be plain added tokens.
    let mut tok = qwen2_pipeline(trained.get_model().clone(), opts.pre_tokenizer)?;
    let specials: Vec<AddedToken> = opts
        .special_tokens
        .iter()
        .map(|t| AddedToken::from(t.clone(), true))
        .collect();
    tok.add_special_tokens(specials).map_err(err)?;
    let added: Vec<AddedToken> = opts
        .added_tokens
        .iter()
        .map(|t| AddedToken::from(t.clone(), false).normalized(false))
        .collect();
    tok.add_tokens(added).map_err(err)?;
    Tokenizer::new(tok, None)
}
