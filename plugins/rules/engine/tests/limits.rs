//! Hostile expressions fail cleanly: deep nesting, long operator chains, wide
//! lists and huge inputs are refused at compile time with the position, or
//! evaluated on a bounded stack; the costly functions stay linear; overflowing
//! arguments are errors. Run on a small thread stack, as a host's worker may be.

use tenure_rules_engine::limits::{MAX_DEPTH, MAX_OPERATORS};
use tenure_rules_engine::{Attr, Person, RuleSet, evaluate_entra, evaluate_expression};

fn on_small_stack<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .expect("thread")
        .join()
        .expect("no crash")
}

fn nested(depth: usize) -> String {
    format!(
        "{}person.given_name{}",
        "Left(".repeat(depth),
        ", 3)".repeat(depth)
    )
}

#[test]
fn the_deepest_allowed_expression_runs_and_one_deeper_is_refused_with_its_position() {
    // Each Left( is one level; the attribute read adds none.
    let ok = on_small_stack(|| {
        let p = Person {
            given_name: Some("Ada".into()),
            ..Person::default()
        };
        evaluate_expression(&nested(MAX_DEPTH - 1), &p, 0)
    });
    assert_eq!(ok, Ok(Attr::Text("Ada".into())));
    let e =
        on_small_stack(|| evaluate_expression(&nested(MAX_DEPTH + 1), &Person::default(), 0)).unwrap_err();
    assert!(
        e.contains("nested more than") && e.contains("line 1, column"),
        "{e}"
    );
    let doc = format!(
        "destinations:\n  d:\n    attributes:\n      x: {{ expr: '{}' }}\n",
        nested(MAX_DEPTH + 5)
    );
    let e = on_small_stack(move || RuleSet::parse(&doc).err().map(|e| e.to_string())).expect("refused");
    assert!(
        e.starts_with("destinations.d.attributes.x.expr: line 1, column"),
        "{e}"
    );
    // The same through IIF chains and parentheses.
    let iifs = format!(
        "{}\"x\"{}",
        "IIF(true, ".repeat(MAX_DEPTH + 1),
        ", 1)".repeat(MAX_DEPTH + 1)
    );
    assert!(on_small_stack(move || evaluate_expression(&iifs, &Person::default(), 0)).is_err());
    let parens = format!("{}1{}", "(".repeat(200), ")".repeat(200));
    assert!(on_small_stack(move || evaluate_expression(&parens, &Person::default(), 0)).is_err());
}

#[test]
fn long_operator_chains_are_bounded() {
    let ok = vec!["1"; MAX_OPERATORS].join(" + ");
    assert_eq!(
        on_small_stack(move || evaluate_expression(&ok, &Person::default(), 0)),
        Ok(Attr::Number(MAX_OPERATORS as i64))
    );
    let long = vec!["true"; 450].join(" && ");
    let e = on_small_stack(move || evaluate_expression(&long, &Person::default(), 0)).unwrap_err();
    assert!(e.contains("operators") && e.len() < 600, "{e}");
    let entra = format!("Join(\"\", {})", vec!["\"a\""; 300].join(", "));
    let e = on_small_stack(move || evaluate_entra(&entra, &Person::default(), 0)).unwrap_err();
    assert!(e.contains("arguments or items"), "{e}");
}

#[test]
fn duplicates_and_unique_values_are_linear() {
    let many: Vec<String> = (0..100_000).map(|i| format!("v{}", i % 50_000)).collect();
    let p = Person {
        custom: vec![("tags".into(), Attr::Many(many))],
        ..Person::default()
    };
    let started = std::time::Instant::now();
    let Attr::Many(unique) = evaluate_expression("RemoveDuplicates(person.custom.tags)", &p, 0).unwrap()
    else {
        panic!("a list")
    };
    assert_eq!(unique.len(), 50_000);
    let Attr::Many(candidates) = evaluate_expression("SelectUniqueValue(person.custom.tags)", &p, 0).unwrap()
    else {
        panic!("a list")
    };
    assert_eq!(candidates.len(), 50_000);
    // Not a timing assertion: a quadratic version takes minutes here, so this only
    // reports; the benchmark measures.
    println!("100,000 values deduplicated twice in {:?}", started.elapsed());
}

#[test]
fn overflowing_arguments_are_errors() {
    let p = Person::default();
    let e = evaluate_expression(
        "RandomString(10, 9223372036854775807, 9223372036854775807, 1, 1)",
        &p,
        0,
    )
    .unwrap_err();
    assert!(e.contains("RandomString"), "{e}");
    let e = evaluate_expression(r#"NumFromDate(DateAdd("yyyy", 200000, "2026-01-01"))"#, &p, 0).unwrap_err();
    assert!(e.contains("NumFromDate") || e.contains("DateAdd"), "{e}");
    let e = evaluate_expression(r#"DateAdd("s", 9223372036854775807, "2026-01-01")"#, &p, 0).unwrap_err();
    assert!(e.contains("DateAdd"), "{e}");
    let e = evaluate_expression(r#"Mid("abc", 9223372036854775807, 9223372036854775807)"#, &p, 0);
    assert_eq!(e, Ok(Attr::Text(String::new())));
}

#[test]
fn member_and_index_chains_are_bounded_and_unary_chains_do_not_recurse() {
    use tenure_rules_engine::limits::MAX_CHAIN;
    // Each access in a row is a level of the tree (in the plugin, 66 of them trapped).
    for e in [
        format!("{{\"a\": 1}}{}", ".a".repeat(MAX_CHAIN + 1)),
        format!("[1]{}", "[0]".repeat(MAX_CHAIN + 1)),
    ] {
        let r = on_small_stack(move || evaluate_expression(&e, &Person::default(), 0)).unwrap_err();
        assert!(r.contains("in a row") && r.contains("line 1, column"), "{r}");
    }
    // Within the limit: an ordinary answer (here: an int has no members).
    let e = format!("{{\"a\": 1}}{}", ".a".repeat(MAX_CHAIN));
    let r = on_small_stack(move || evaluate_expression(&e, &Person::default(), 0)).unwrap_err();
    assert!(
        r.contains("no matching overload") && !r.contains("in a row"),
        "{r}"
    );
    // Unary chains are folded as they are parsed, at any length (the plugin too).
    let nots = format!("{}true", "!".repeat(2000));
    assert_eq!(
        on_small_stack(move || evaluate_expression(&nots, &Person::default(), 0)),
        Ok(Attr::Flag(true))
    );
}
