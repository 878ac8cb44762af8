//! SearchEngine: BM25 (`rank_bm25.BM25Okapi`, k1 = 1.5, b = 0.75,
//! epsilon = 0.25) over the `tokenized_documents` of `SearchEngine.json`,
//! the query tokenised by NLTK's `word_tokenize`, the two best documents
//! returned. The scores are computed with the same floating-point
//! operations in the same order as `rank_bm25` with numpy, so they are
//! bit-identical.
//!
//! Ties: the official code ranks with `np.argsort(-scores)` (an unstable
//! sort whose tie order depends on numpy's version and CPU); here ties go
//! to the lower document index.

use super::tokenize::word_tokenize;
use super::{gt_field, ApiInfo, ApiResult, Args, Crash, Ctx, Output, Raised};
use crate::data::apibank::value::{dict, get};
use std::collections::HashMap;
use toolgym_reward::pycall::PyVal;
use toolgym_reward::pyjson::py_strip;

const K1: f64 = 1.5;
const B: f64 = 0.75;
const EPSILON: f64 = 0.25;

/// A BM25Okapi index.
#[derive(Clone, Debug)]
pub(crate) struct Bm25 {
    doc_freqs: Vec<HashMap<String, u32>>,
    doc_len: Vec<f64>,
    avgdl: f64,
    idf: HashMap<String, f64>,
}

impl Bm25 {
    /// The index of `SearchEngine.json`'s `tokenized_documents` (`None`
    /// when the database has none: the API then fails like the official
    /// one does).
    pub(crate) fn from_database(db: &PyVal) -> Option<Self> {
        let PyVal::List(docs) = get(db, "tokenized_documents")? else {
            return None;
        };
        let mut corpus: Vec<Vec<String>> = Vec::with_capacity(docs.len());
        for d in docs {
            let PyVal::List(words) = d else { return None };
            corpus.push(words.iter().map(PyVal::py_str).collect());
        }
        Some(Self::new(&corpus))
    }

    fn new(corpus: &[Vec<String>]) -> Self {
        let mut doc_freqs = Vec::with_capacity(corpus.len());
        let mut doc_len = Vec::with_capacity(corpus.len());
        // Document frequency of each word, in first-seen order (the order
        // Python sums the idfs in).
        let mut nd: Vec<(String, u32)> = Vec::new();
        let mut nd_index: HashMap<String, usize> = HashMap::new();
        let mut num_doc: u64 = 0;
        for document in corpus {
            doc_len.push(document.len() as f64);
            num_doc += document.len() as u64;
            let mut freqs: Vec<(String, u32)> = Vec::new();
            let mut index: HashMap<&str, usize> = HashMap::new();
            for w in document {
                match index.get(w.as_str()) {
                    Some(&i) => freqs[i].1 += 1,
                    None => {
                        index.insert(w, freqs.len());
                        freqs.push((w.clone(), 1));
                    }
                }
            }
            for (w, _) in &freqs {
                match nd_index.get(w) {
                    Some(&i) => nd[i].1 += 1,
                    None => {
                        nd_index.insert(w.clone(), nd.len());
                        nd.push((w.clone(), 1));
                    }
                }
            }
            doc_freqs.push(freqs.into_iter().collect());
        }
        let n = corpus.len();
        let avgdl = if n == 0 {
            0.0
        } else {
            num_doc as f64 / n as f64
        };
        let mut idf = HashMap::new();
        let mut idf_sum = 0.0;
        let mut negative = Vec::new();
        for (w, freq) in &nd {
            let v = (n as f64 - f64::from(*freq) + 0.5).ln() - (f64::from(*freq) + 0.5).ln();
            idf.insert(w.clone(), v);
            idf_sum += v;
            if v < 0.0 {
                negative.push(w.clone());
            }
        }
        let average_idf = if nd.is_empty() {
            0.0
        } else {
            idf_sum / nd.len() as f64
        };
        let eps = EPSILON * average_idf;
        for w in negative {
            idf.insert(w, eps);
        }
        Self {
            doc_freqs,
            doc_len,
            avgdl,
            idf,
        }
    }

    /// `get_scores(query)`.
    pub(crate) fn scores(&self, query: &[String]) -> Vec<f64> {
        let mut score = vec![0.0; self.doc_len.len()];
        for q in query {
            let idf = self.idf.get(q).copied().unwrap_or(0.0);
            for (i, s) in score.iter_mut().enumerate() {
                let f = f64::from(self.doc_freqs[i].get(q).copied().unwrap_or(0));
                let norm = (1.0 - B) + B * self.doc_len[i] / self.avgdl;
                *s += idf * (f * (K1 + 1.0) / (f + K1 * norm));
            }
        }
        score
    }

    /// The indices of the two best documents (ties: lower index first).
    pub(crate) fn top2(&self, query: &[String]) -> Vec<usize> {
        let scores = self.scores(query);
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| (-scores[a]).total_cmp(&-scores[b]));
        order.truncate(2);
        order
    }
}

/// The query tokens: `word_tokenize(keyword.lower().strip())`.
pub(crate) fn query_tokens(keyword: &str) -> Vec<String> {
    word_tokenize(py_strip(&keyword.to_lowercase()))
}

pub(crate) fn call(api: &'static ApiInfo, a: &Args, cx: &mut Ctx<'_>) -> Result<ApiResult, Raised> {
    let input = dict([("keyword", a.value("keyword"))]);
    let Some(index) = cx.state.data.bm25.as_ref() else {
        // `BM25Okapi(self.database['tokenized_documents'])` in __init__.
        return Err(Raised::Error("KeyError: 'tokenized_documents'".into()));
    };
    let outcome = (|| {
        let tokens = query_tokens(a.text("keyword")?);
        let raw = get(cx.state.table("SearchEngine"), "raw_documents")
            .ok_or("KeyError: 'raw_documents'")?;
        let PyVal::List(docs) = raw else {
            return Err("raw_documents is not a list".to_string());
        };
        let results = index
            .top2(&tokens)
            .into_iter()
            .map(|i| docs.get(i).cloned().ok_or("list index out of range"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Output::Value(PyVal::List(results)))
    })();
    Ok(ApiResult::new(Some(api.name), input, outcome))
}

/// `sorted(docs, key=lambda x: x['title'] + x['abstract'], reverse=True)`.
fn sorted_docs(v: &PyVal) -> Result<Vec<PyVal>, Crash> {
    let PyVal::List(docs) = v else {
        return Err(Crash::Other(format!(
            "TypeError: '{}' object is not iterable",
            v.py_type().name()
        )));
    };
    let mut keyed = Vec::with_capacity(docs.len());
    for d in docs {
        let part = |k: &str| -> Result<String, Crash> {
            match get(d, k) {
                Some(PyVal::Str(s)) => Ok(s.clone()),
                Some(_) => Err(Crash::Other("TypeError: cannot concatenate".into())),
                None => Err(Crash::KeyError(format!("{k:?}"))),
            }
        };
        keyed.push((part("title")? + &part("abstract")?, d.clone()));
    }
    // Stable, descending (Python's reverse=True keeps equal keys in order).
    keyed.sort_by(|a, b| b.0.cmp(&a.0));
    Ok(keyed.into_iter().map(|(_, d)| d).collect())
}

pub(crate) fn check(r: &ApiResult, gt: &PyVal) -> Result<bool, Crash> {
    if !r.api_name_eq(gt)? || !r.exception_eq(gt)? {
        return Ok(false);
    }
    let theirs = gt_field(gt, "output")?;
    let mine = match &r.output {
        Output::Value(PyVal::None) => None,
        Output::Value(v) => Some(sorted_docs(v)?),
        Output::ExceptionObject(_) => None,
    };
    let theirs = match theirs {
        PyVal::None => None,
        v => Some(sorted_docs(v)?),
    };
    match (mine, theirs) {
        (Some(a), Some(b)) => Ok(PyVal::List(a).py_eq(&PyVal::List(b))),
        // `response_output` (or `groundtruth_output`) is unbound.
        _ => Err(Crash::Other(
            "UnboundLocalError in SearchEngine's check".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bm25_like_rank_bm25() {
        let corpus: Vec<Vec<String>> = [
            "the cat sat",
            "the dog sat on the mat",
            "a bird and a fish",
            "the sun is hot",
            "rain falls on the hills",
        ]
        .iter()
        .map(|d| d.split(' ').map(String::from).collect())
        .collect();
        let bm = Bm25::new(&corpus);
        let q: Vec<String> = vec!["cat".into(), "mat".into()];
        let s = bm.scores(&q);
        assert!(s[0] > 0.0 && s[1] > 0.0 && s[2] == 0.0, "{s:?}");
        // A word in most documents has a negative idf, replaced by
        // epsilon times the mean idf.
        let the = bm.scores(&["the".to_string()]);
        assert!(the.iter().all(|&x| x >= 0.0), "{the:?}");
        assert_eq!(bm.top2(&q).len(), 2);
        assert_eq!(
            query_tokens("  The Sustainable-Development?  "),
            ["the", "sustainable-development", "?"]
        );
    }
}
