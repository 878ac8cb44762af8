//! NLTK's `word_tokenize` (nltk 3.9.1, `NLTKWordTokenizer`), which
//! SearchEngine applies to the query: the regular-expression substitutions
//! of the improved Treebank tokenizer, in order, then a split on
//! whitespace. Each substitution is done here by direct scanning, with
//! `re.sub`'s leftmost, non-overlapping matches.
//!
//! One difference: `word_tokenize` first splits the text into sentences
//! with the Punkt model (a data download); this port treats the whole
//! query as one sentence (`preserve_line=True`), which only matters for
//! queries with several sentences.

use toolgym_reward::pyjson::is_py_space;

fn is_word(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

/// `re.sub` by scanning: `at(text, i)` gives the end of a match at `i` and
/// its replacement.
fn sub(text: &[char], mut at: impl FnMut(&[char], usize) -> Option<(usize, String)>) -> Vec<char> {
    let mut out = Vec::with_capacity(text.len() + 8);
    let mut i = 0;
    while i < text.len() {
        match at(text, i) {
            Some((end, rep)) if end > i => {
                out.extend(rep.chars());
                i = end;
            }
            _ => {
                out.push(text[i]);
                i += 1;
            }
        }
    }
    out
}

/// Pads every character matching `pred` with spaces.
fn pad(text: &[char], pred: impl Fn(char) -> bool) -> Vec<char> {
    sub(text, |t, i| {
        pred(t[i]).then(|| (i + 1, format!(" {} ", t[i])))
    })
}

/// Pads every (non-overlapping) occurrence of `seq`.
fn pad_seq(text: &[char], seq: &str, rep: &str) -> Vec<char> {
    let s: Vec<char> = seq.chars().collect();
    sub(text, |t, i| {
        t[i..]
            .starts_with(&s)
            .then(|| (i + s.len(), rep.to_string()))
    })
}

/// Python's `$`: at the end, or before a final newline.
fn at_end(t: &[char], i: usize) -> bool {
    i == t.len() || (i + 1 == t.len() && t[i] == '\n')
}

/// `\b` at `i`.
fn boundary(t: &[char], i: usize) -> bool {
    let before = i > 0 && is_word(t[i - 1]);
    let after = i < t.len() && is_word(t[i]);
    before != after
}

fn eq_ci(a: char, b: char) -> bool {
    a == b || a.to_lowercase().eq(b.to_lowercase())
}

fn starts_ci(t: &[char], i: usize, s: &str) -> bool {
    (i..)
        .zip(s.chars())
        .all(|(k, c)| k < t.len() && eq_ci(t[k], c))
}

/// The final-period rules: `([^\.])(\.)([<closers>]*)\s*$` →
/// `\1 \2 \3 ` (or `\1 \2\3 ` when `space_after_period` is false).
fn final_period(t: &[char], closers: &str, space_after_period: bool) -> Vec<char> {
    let Some(p) = t.iter().rposition(|&c| c == '.') else {
        return t.to_vec();
    };
    if p == 0 || t[p - 1] == '.' {
        return t.to_vec();
    }
    let mut k = p + 1;
    while k < t.len() && closers.contains(t[k]) {
        k += 1;
    }
    if !t[k..].iter().all(|&c| is_py_space(c)) {
        return t.to_vec();
    }
    let mut out: Vec<char> = t[..p].to_vec();
    out.push(' ');
    out.push('.');
    if space_after_period {
        out.push(' ');
    }
    out.extend_from_slice(&t[p + 1..k]);
    out.push(' ');
    out
}

/// `word_tokenize(text, preserve_line=True)`.
pub(crate) fn word_tokenize(text: &str) -> Vec<String> {
    let mut t: Vec<char> = text.chars().collect();

    // Starting quotes.
    t = sub(&t, |t, i| match t[i] {
        '«' | '“' | '‘' | '„' => Some((i + 1, format!(" {} ", t[i]))),
        '`' => {
            let mut e = i;
            while e < t.len() && t[e] == '`' {
                e += 1;
            }
            Some((e, format!(" {} ", "`".repeat(e - i))))
        }
        _ => None,
    });
    if t.first() == Some(&'"') {
        t.splice(0..1, ['`', '`']);
    }
    t = pad_seq(&t, "``", " `` ");
    t = sub(&t, |t, i| {
        if !matches!(t[i], ' ' | '(' | '[' | '{' | '<') {
            return None;
        }
        if t.get(i + 1) == Some(&'"') {
            Some((i + 2, format!("{} `` ", t[i])))
        } else if t.get(i + 1) == Some(&'\'') && t.get(i + 2) == Some(&'\'') {
            Some((i + 3, format!("{} `` ", t[i])))
        } else {
            None
        }
    });
    t = sub(&t, |t, i| {
        if t[i] != '\'' {
            return None;
        }
        let w = *t.get(i + 1)?;
        let excluded = ["re", "ve", "ll", "m", "t", "s", "d", "n"]
            .iter()
            .any(|p| starts_ci(t, i + 1, p));
        (!excluded && is_word(w) && boundary(t, i + 2)).then(|| (i + 2, format!("' {w}")))
    });

    // Punctuation.
    t = final_period(&t, "])}>\"'»”’ ", true);
    t = sub(&t, |t, i| {
        let c = t[i];
        let n = *t.get(i + 1)?;
        (matches!(c, ':' | ',') && !is_digit(n)).then(|| (i + 2, format!(" {c} {n}")))
    });
    t = sub(&t, |t, i| {
        (matches!(t[i], ':' | ',') && at_end(t, i + 1)).then(|| (i + 1, format!(" {} ", t[i])))
    });
    t = sub(&t, |t, i| {
        let mut e = i;
        while e < t.len() && t[e] == '.' {
            e += 1;
        }
        (e - i >= 2).then(|| (e, format!(" {} ", ".".repeat(e - i))))
    });
    t = pad(&t, |c| matches!(c, ';' | '@' | '#' | '$' | '%' | '&'));
    t = final_period(&t, "])}>\"'", false);
    t = pad(&t, |c| matches!(c, '?' | '!'));
    t = sub(&t, |t, i| {
        (t[i] != '\'' && t.get(i + 1) == Some(&'\'') && t.get(i + 2) == Some(&' '))
            .then(|| (i + 3, format!("{} ' ", t[i])))
    });
    t = pad(&t, |c| c == '*');

    // Parentheses and brackets, double dashes.
    t = pad(&t, |c| {
        matches!(c, ']' | '[' | '(' | ')' | '{' | '}' | '<' | '>')
    });
    t = pad_seq(&t, "--", " -- ");
    t.insert(0, ' ');
    t.push(' ');

    // Ending quotes.
    t = pad(&t, |c| matches!(c, '»' | '”' | '’'));
    t = pad_seq(&t, "''", " '' ");
    t = pad_seq(&t, "\"", " '' ");
    t = sub(&t, |t, i| {
        let mut e = i;
        while e < t.len() && is_py_space(t[e]) {
            e += 1;
        }
        (e > i).then(|| (e, " ".to_string()))
    });
    for clitics in [
        &["'s", "'S", "'m", "'M", "'d", "'D", "'"][..],
        &["'ll", "'LL", "'re", "'RE", "'ve", "'VE", "n't", "N'T"][..],
    ] {
        t = sub(&t, |t, i| {
            if matches!(t[i], '\'' | ' ') {
                return None;
            }
            clitics.iter().find_map(|c| {
                let n = c.chars().count();
                let rest: String = t.get(i + 1..i + 1 + n)?.iter().collect();
                (rest == *c && t.get(i + 1 + n) == Some(&' '))
                    .then(|| (i + 2 + n, format!("{} {c} ", t[i])))
            })
        });
    }

    // Contractions: `\b(can)(not)\b` and friends, then ` ('t)(is)\b`.
    for (a, b, tail_space) in [
        ("can", "not", false),
        ("d", "'ye", false),
        ("gim", "me", false),
        ("gon", "na", false),
        ("got", "ta", false),
        ("lem", "me", false),
        ("more", "'n", false),
        ("wan", "na", true),
    ] {
        let (la, lb) = (a.chars().count(), b.chars().count());
        t = sub(&t, |t, i| {
            if !boundary(t, i) || !starts_ci(t, i, a) || !starts_ci(t, i + la, b) {
                return None;
            }
            let end = i + la + lb;
            let ok = if tail_space {
                t.get(end).is_some_and(|&c| is_py_space(c))
            } else {
                boundary(t, end)
            };
            let first: String = t[i..i + la].iter().collect();
            let second: String = t[i + la..end].iter().collect();
            ok.then(|| (end, format!(" {first} {second} ")))
        });
    }
    for b in ["is", "was"] {
        t = sub(&t, |t, i| {
            if t[i] != ' ' || !starts_ci(t, i + 1, "'t") || !starts_ci(t, i + 3, b) {
                return None;
            }
            let end = i + 3 + b.len();
            boundary(t, end).then(|| {
                let q: String = t[i + 1..i + 3].iter().collect();
                let w: String = t[i + 3..end].iter().collect();
                (end, format!(" {q} {w} "))
            })
        });
    }

    t.split(|&c| is_py_space(c))
        .filter(|w| !w.is_empty())
        .map(|w| w.iter().collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::word_tokenize;

    #[test]
    fn treebank_examples() {
        let tok = |s: &str| word_tokenize(s).join("|");
        assert_eq!(
            tok("Good muffins cost $3.88 (roughly 3,36 euros)\nin New York.  Please buy me\ntwo of them.\nThanks."),
            "Good|muffins|cost|$|3.88|(|roughly|3,36|euros|)|in|New|York.|Please|buy|me|two|of|them.|Thanks|."
        );
        assert_eq!(
            tok("don't you cannot, they'll"),
            "do|n't|you|can|not|,|they|'ll"
        );
        assert_eq!(tok("\"quoted\" text"), "``|quoted|''|text");
        assert_eq!(
            tok("state-of-the-art ai-driven"),
            "state-of-the-art|ai-driven"
        );
    }
}
