//! Dictionary and Translate, which call web services in the original
//! (`api.dictionaryapi.dev` through `requests`, Google through
//! `googletrans`). Nothing here uses the network:
//!
//! * [`Network::Recorded`] (the default) answers from the results recorded
//!   in the sample files: Dictionary by the keyword normalised as the API
//!   does (`replace('_', ' ').strip().lower()`), Translate by the exact
//!   source text and the language codes resolved as the API does. A call
//!   with no recorded answer raises, as a failed request would. This is a
//!   documented deviation: the live services may answer differently today.
//! * [`Network::Unavailable`] behaves like the official code without a
//!   network: every call fails.
//!
//! [`Network::Recorded`]: crate::data::apibank::Network::Recorded
//! [`Network::Unavailable`]: crate::data::apibank::Network::Unavailable

use super::{gt_input, ApiInfo, ApiResult, Args, Crash, Ctx, Output, Raised};
use crate::data::apibank::value::get;
use crate::data::apibank::Network;
use std::collections::HashMap;
use toolgym_reward::pycall::PyVal;
use toolgym_reward::pyjson::py_strip;

/// `googletrans.LANGUAGES` (googletrans 4.0.0rc1), in its order: Translate
/// resolves a language by the first code equal to it or whose name it
/// contains.
pub(crate) const LANGUAGES: [(&str, &str); 107] = [
    ("af", "afrikaans"),
    ("sq", "albanian"),
    ("am", "amharic"),
    ("ar", "arabic"),
    ("hy", "armenian"),
    ("az", "azerbaijani"),
    ("eu", "basque"),
    ("be", "belarusian"),
    ("bn", "bengali"),
    ("bs", "bosnian"),
    ("bg", "bulgarian"),
    ("ca", "catalan"),
    ("ceb", "cebuano"),
    ("ny", "chichewa"),
    ("zh-cn", "chinese (simplified)"),
    ("zh-tw", "chinese (traditional)"),
    ("co", "corsican"),
    ("hr", "croatian"),
    ("cs", "czech"),
    ("da", "danish"),
    ("nl", "dutch"),
    ("en", "english"),
    ("eo", "esperanto"),
    ("et", "estonian"),
    ("tl", "filipino"),
    ("fi", "finnish"),
    ("fr", "french"),
    ("fy", "frisian"),
    ("gl", "galician"),
    ("ka", "georgian"),
    ("de", "german"),
    ("el", "greek"),
    ("gu", "gujarati"),
    ("ht", "haitian creole"),
    ("ha", "hausa"),
    ("haw", "hawaiian"),
    ("iw", "hebrew"),
    ("he", "hebrew"),
    ("hi", "hindi"),
    ("hmn", "hmong"),
    ("hu", "hungarian"),
    ("is", "icelandic"),
    ("ig", "igbo"),
    ("id", "indonesian"),
    ("ga", "irish"),
    ("it", "italian"),
    ("ja", "japanese"),
    ("jw", "javanese"),
    ("kn", "kannada"),
    ("kk", "kazakh"),
    ("km", "khmer"),
    ("ko", "korean"),
    ("ku", "kurdish (kurmanji)"),
    ("ky", "kyrgyz"),
    ("lo", "lao"),
    ("la", "latin"),
    ("lv", "latvian"),
    ("lt", "lithuanian"),
    ("lb", "luxembourgish"),
    ("mk", "macedonian"),
    ("mg", "malagasy"),
    ("ms", "malay"),
    ("ml", "malayalam"),
    ("mt", "maltese"),
    ("mi", "maori"),
    ("mr", "marathi"),
    ("mn", "mongolian"),
    ("my", "myanmar (burmese)"),
    ("ne", "nepali"),
    ("no", "norwegian"),
    ("or", "odia"),
    ("ps", "pashto"),
    ("fa", "persian"),
    ("pl", "polish"),
    ("pt", "portuguese"),
    ("pa", "punjabi"),
    ("ro", "romanian"),
    ("ru", "russian"),
    ("sm", "samoan"),
    ("gd", "scots gaelic"),
    ("sr", "serbian"),
    ("st", "sesotho"),
    ("sn", "shona"),
    ("sd", "sindhi"),
    ("si", "sinhala"),
    ("sk", "slovak"),
    ("sl", "slovenian"),
    ("so", "somali"),
    ("es", "spanish"),
    ("su", "sundanese"),
    ("sw", "swahili"),
    ("sv", "swedish"),
    ("tg", "tajik"),
    ("ta", "tamil"),
    ("te", "telugu"),
    ("th", "thai"),
    ("tr", "turkish"),
    ("uk", "ukrainian"),
    ("ur", "urdu"),
    ("ug", "uyghur"),
    ("uz", "uzbek"),
    ("vi", "vietnamese"),
    ("cy", "welsh"),
    ("xh", "xhosa"),
    ("yi", "yiddish"),
    ("yo", "yoruba"),
    ("zu", "zulu"),
];

/// Translate's `detect_language` (on the already lower-cased name).
pub(crate) fn detect_language(lang: Option<&str>) -> Result<&'static str, String> {
    let Some(lang) = lang else { return Ok("en") };
    if lang.contains("chinese") {
        return Ok(if lang.contains("traditional") {
            "zh-tw"
        } else {
            "zh-cn"
        });
    }
    LANGUAGES
        .iter()
        .find(|(code, name)| *code == lang || lang.contains(name))
        .map(|(code, _)| *code)
        .ok_or_else(|| "Language not supported.".to_string())
}

/// Dictionary's keyword normalisation.
fn dictionary_key(keyword: &str) -> String {
    py_strip(&keyword.replace('_', " ")).to_lowercase()
}

type TranslateKey = (String, Option<&'static str>, &'static str);

/// The resolved request of a Translate call: source text, source language
/// code (None: auto), target code.
fn translate_key(args: &[(String, PyVal)]) -> Result<TranslateKey, String> {
    let get_text = |k: &str| -> Result<Option<String>, String> {
        match args.iter().find(|(n, _)| n == k).map(|(_, v)| v) {
            None => Ok(None),
            Some(PyVal::Str(t)) => Ok(Some(t.clone())),
            Some(other) => Err(format!(
                "'{}' object has no attribute 'lower'",
                other.py_type().name()
            )),
        }
    };
    let src = match args.iter().find(|(n, _)| n == "src").map(|(_, v)| v) {
        Some(PyVal::Str(t)) => t.clone(),
        other => (other.unwrap_or(&PyVal::None)).py_str(),
    };
    let src_lang = get_text("src_lang")?.map(|l| l.to_lowercase());
    let tgt_lang = get_text("tgt_lang")?.map(|l| l.to_lowercase());
    let src_code = match &src_lang {
        Some(l) => Some(detect_language(Some(l))?),
        None => None,
    };
    let tgt_code = detect_language(tgt_lang.as_deref())?;
    Ok((src, src_code, tgt_code))
}

/// The answers recorded in the sample files, standing in for the web
/// services.
#[derive(Clone, Debug, Default)]
pub(crate) struct Recorded {
    dictionary: HashMap<String, PyVal>,
    translate: HashMap<TranslateKey, PyVal>,
}

impl Recorded {
    /// Records the result of a sample's Dictionary or Translate call (the
    /// first recording of a request wins).
    pub(crate) fn add(&mut self, api_name: &str, result: &PyVal) {
        let (Some(input), Some(output)) = (get(result, "input"), get(result, "output")) else {
            return;
        };
        if !get(result, "exception").is_none_or(|e| e.py_eq(&PyVal::None)) {
            return;
        }
        match api_name {
            "Dictionary" => {
                if let Some(PyVal::Str(k)) = get(input, "keyword") {
                    self.dictionary
                        .entry(dictionary_key(k))
                        .or_insert_with(|| output.clone());
                }
            }
            "Translate" => {
                let PyVal::Dict(entries) = input else { return };
                let args: Vec<(String, PyVal)> = entries
                    .iter()
                    .map(|(k, v)| (k.py_str(), v.clone()))
                    .collect();
                if let Ok(key) = translate_key(&args) {
                    self.translate.entry(key).or_insert_with(|| output.clone());
                }
            }
            _ => {}
        }
    }

    /// How many requests have a recorded answer.
    pub(crate) fn len(&self) -> usize {
        self.dictionary.len() + self.translate.len()
    }
}

pub(crate) fn call(api: &'static ApiInfo, a: &Args, cx: &mut Ctx<'_>) -> Result<ApiResult, Raised> {
    let recorded = &cx.state.data.recorded;
    if api.name == "Dictionary" {
        let outcome = (|| {
            let key = dictionary_key(a.text("keyword")?);
            match cx.network {
                Network::Unavailable => Err("network unavailable (offline run)".to_string()),
                Network::Recorded => recorded
                    .dictionary
                    .get(&key)
                    .cloned()
                    .map(Output::Value)
                    .ok_or_else(|| "Failed.".to_string()),
            }
        })();
        return Ok(ApiResult::new(Some(api.name), a.input(api), outcome));
    }
    let outcome = (|| {
        let key = translate_key(&a.0)?;
        match cx.network {
            Network::Unavailable => Err("network unavailable (offline run)".to_string()),
            Network::Recorded => recorded
                .translate
                .get(&key)
                .cloned()
                .map(Output::Value)
                .ok_or_else(|| "no recorded translation for this request (offline)".to_string()),
        }
    })();
    Ok(ApiResult::new(
        Some(api.name),
        a.input_kwargs("src"),
        outcome,
    ))
}

pub(crate) fn check(api: &'static ApiInfo, r: &ApiResult, gt: &PyVal) -> Result<bool, Crash> {
    if api.name == "Dictionary" {
        return Ok(r.api_name == Some("Dictionary") && r.output_eq(gt)? && r.exception_eq(gt)?);
    }
    Ok(r.api_name_eq(gt)?
        && r.input("src")?.py_eq(gt_input(gt, "src")?)
        && r.output_eq(gt)?
        && r.exception_eq(gt)?)
}

/// Whether `api` is one of the network APIs answered offline.
pub(crate) fn is_network(api: &str) -> bool {
    matches!(api, "Dictionary" | "Translate")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_resolve_like_translate() {
        assert_eq!(detect_language(None), Ok("en"));
        assert_eq!(detect_language(Some("fr")), Ok("fr"));
        assert_eq!(detect_language(Some("spanish")), Ok("es"));
        assert_eq!(detect_language(Some("malayalam")), Ok("ms"));
        assert_eq!(detect_language(Some("traditional chinese")), Ok("zh-tw"));
        assert!(detect_language(Some("klingon")).is_err());
    }
}
