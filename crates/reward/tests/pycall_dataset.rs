//! `pycall::parse_calls_with` / `parse_literal_with`: the relaxations of
//! Python call syntax that data sets such as ToolACE need (free-form tool
//! and parameter names, JSON constants), with Python's own syntax
//! unchanged by default.

use toolgym_reward::pycall::{
    parse_calls, parse_calls_with, parse_literal, parse_literal_with, CallSyntax, PyCallErrorKind,
    PyVal,
};

fn names(text: &str) -> Vec<(String, Vec<String>)> {
    parse_calls_with(text, CallSyntax::dataset())
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .into_iter()
        .map(|c| (c.name, c.args.into_iter().map(|(k, _)| k).collect()))
        .collect()
}

#[test]
fn free_form_names_are_kept_as_written() {
    assert_eq!(
        names("[Get Manager Placeholder Image(sport='football'), Search-News v2(q='x'), a.b(c=1)]"),
        [
            (
                "Get Manager Placeholder Image".to_string(),
                vec!["sport".to_string()]
            ),
            ("Search-News v2".to_string(), vec!["q".to_string()]),
            ("a.b".to_string(), vec!["c".to_string()]),
        ]
    );
    // Keywords: dashes, dots, `$`, `@`, Python keywords, non-ASCII.
    assert_eq!(
        names("f(start-date='x', a.b=1, $top=2, @type=3, from=4, None=5, città=6)")[0].1,
        [
            "start-date",
            "a.b",
            "$top",
            "@type",
            "from",
            "None",
            "città"
        ]
    );
    // Bare sequences and spaces around names; names with dots and spaces.
    assert_eq!(names("  Get Rate (base='USD') , x . y(z=1) ").len(), 2);
    assert_eq!(names("x . y(z=1)")[0].0, "x . y");
    assert_eq!(names("[]"), []);
}

#[test]
fn values_are_never_mistaken_for_names() {
    let calls = parse_calls_with(
        r#"[Company Search(query='a, b(c=1)', note="x=1, Get Y(z=2)", t='''multi
line, f(q=1)''', d={'k-1': [1, 2]}, e=("a b(", 'c')), g(h=r'\'(x=1)')]"#,
        CallSyntax::dataset(),
    )
    .unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].name, "Company Search");
    assert_eq!(calls[0].args[0].1, PyVal::Str("a, b(c=1)".into()));
    assert_eq!(calls[0].args[1].1, PyVal::Str("x=1, Get Y(z=2)".into()));
    assert_eq!(calls[0].args[2].1, PyVal::Str("multi\nline, f(q=1)".into()));
    assert_eq!(calls[1].name, "g");
    assert_eq!(calls[1].args[0].1, PyVal::Str(r"\'(x=1)".into()));
}

#[test]
fn offsets_point_into_the_original_text() {
    let text = "[Get Stock Quote(symbol='A'), get-news(max-items=[1, oops])]";
    let e = parse_calls_with(text, CallSyntax::dataset()).unwrap_err();
    assert_eq!(&text[e.offset..e.offset + 4], "oops");
    let calls = parse_calls_with("  [a b(x=1), c d(y=2)]", CallSyntax::dataset()).unwrap();
    assert_eq!(calls[1].offset, 13);
    let e = parse_calls_with("[a b(x=1, x=2)]", CallSyntax::dataset()).unwrap_err();
    assert_eq!(e.kind, PyCallErrorKind::DuplicateKeyword("x".into()));
}

#[test]
fn json_constants_only_when_asked() {
    let with = CallSyntax {
        json_constants: true,
        ..CallSyntax::python()
    };
    let c = parse_calls_with("[f(a=true, b=[false, null], c={'k': null})]", with).unwrap();
    assert_eq!(c[0].args[0].1, PyVal::Bool(true));
    assert_eq!(
        c[0].args[1].1,
        PyVal::List(vec![PyVal::Bool(false), PyVal::None])
    );
    assert!(parse_calls("[f(a=true)]").is_err());
    assert!(parse_literal("null").is_err());
    assert_eq!(parse_literal_with("null", with).unwrap(), PyVal::None);
    // Other names stay errors.
    assert!(parse_calls_with("[f(a=nan)]", CallSyntax::dataset()).is_err());
}

#[test]
fn python_syntax_is_unchanged_by_default() {
    assert_eq!(CallSyntax::default(), CallSyntax::python());
    for text in [
        "[Get Rate(base='USD')]",
        "[get-rate(base='USD')]",
        "[f(from=1)]",
        "[f(a-b=1)]",
    ] {
        assert!(parse_calls(text).is_err(), "{text}");
        assert!(
            parse_calls_with(text, CallSyntax::dataset()).is_ok(),
            "{text}"
        );
    }
    // Not even the relaxed syntax reads these.
    for text in [
        "[f(1x=2)]",
        "[f(-a=2)]",
        "[Get 'Rate'(x=1)]",
        "[f(x=g(y=1))]",
        "[f(x==1)]",
        "[a b]",
    ] {
        assert!(
            parse_calls_with(text, CallSyntax::dataset()).is_err(),
            "{text}"
        );
    }
}

#[test]
fn dataset_strings_are_unicode_text() {
    // A pair of surrogate escapes is one character, as json.dumps then
    // json.loads of the value give it; Python's own syntax keeps reading
    // a surrogate as U+FFFD (a Rust string cannot hold it).
    for text in [
        r#"[f(x="\ud83d\ude00 ok")]"#,
        r#"[f(x='\uD83D\U0000DE00 ok')]"#,
    ] {
        let c = parse_calls_with(text, CallSyntax::dataset()).unwrap();
        assert_eq!(c[0].args[0].1, PyVal::Str("😀 ok".into()), "{text}");
        let c = parse_calls(text).unwrap();
        assert_eq!(
            c[0].args[0].1,
            PyVal::Str("\u{FFFD}\u{FFFD} ok".into()),
            "{text}"
        );
    }
    // A lone surrogate (high, low, or a high one before something else) is
    // refused by name where the data set's value would be changed.
    for (text, lone) in [
        (r#"[f(x='\ud800')]"#, "d800"),
        (r#"[f(x='\udc00')]"#, "dc00"),
        (r#"[f(x='\ud83d\u0041')]"#, "d83d"),
        (r#"[f(x='\ud83d' '\ude00')]"#, "d83d"),
    ] {
        let e = parse_calls_with(text, CallSyntax::dataset()).unwrap_err();
        assert_eq!(
            e.kind,
            PyCallErrorKind::NotJson(format!("a lone surrogate \\u{lone} is not Unicode text")),
            "{text}"
        );
        assert!(parse_calls(text).is_ok(), "{text}");
    }
    // Raw strings hold no escapes.
    let c = parse_calls_with(r#"[f(x=r'\ud800')]"#, CallSyntax::dataset()).unwrap();
    assert_eq!(c[0].args[0].1, PyVal::Str(r"\ud800".into()));
}
