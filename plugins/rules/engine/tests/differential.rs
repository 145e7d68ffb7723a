//! Generated expressions over the whole function library, nested up to and past
//! the limits and fed sizes and values meant to break them (long texts, wide lists,
//! extreme numbers and dates, data that looks like an internal marker). For every
//! one: no panic and no crash on a small stack, the fast path gives the
//! interpreter's answer, Entra syntax of the same expression evaluates cleanly, and
//! no result carries an internal marker. The cargo-fuzz target for the same
//! properties lives with the hardening work (`fuzz/`); this is the part CI runs.

use std::panic::{AssertUnwindSafe, catch_unwind};
use tenure_rules_engine::functions::NAMES;
use tenure_rules_engine::limits::MAX_DEPTH;
use tenure_rules_engine::{
    Attr, Person, evaluate_entra, evaluate_expression, evaluate_expression_interpreted,
};

const NOW: i64 = 1_772_366_400_000;
/// A redacted value: errors must never quote it.
const SECRET: &str = "S3CR3T-2026-01-31";

/// Functions whose answer differs between two calls by design.
const RANDOM: &[&str] = &["Guid", "RandomString"];

fn people() -> Vec<Person> {
    let wide: Vec<String> = (0..300).map(|i| format!("v{}", i % 120)).collect();
    let full = Person {
        ids: vec![("hr".into(), "1001".into())],
        given_name: Some("Zoë-Ann (Jo)".into()),
        family_name: Some("Ørsted".into()),
        emails: vec![("work".into(), "zoe@example.com".into(), true)],
        title: Some("  Senior  Engineer ".into()),
        department: Some("Engineering".into()),
        country: Some("Denmark".into()),
        start_date: Some("2026-03-02".into()),
        status: "active".into(),
        custom: vec![
            ("big".into(), Attr::Text("ab".repeat(40_000))),
            ("wide".into(), Attr::Many(wide)),
            ("level".into(), Attr::Number(i64::MAX)),
            ("negative".into(), Attr::Number(i64::MIN)),
            ("far".into(), Attr::Text("9999-12-31T23:59:59Z".into())),
            ("offset".into(), Attr::Text("2012-03-16-07:00".into())),
            ("forged".into(), Attr::Text("\u{0}tenure:redacted:x".into())),
            (
                "forged_list".into(),
                Attr::Many(vec!["\u{0}tenure:ignore".into(), "a".into()]),
            ),
            ("flag".into(), Attr::Flag(true)),
            ("empty".into(), Attr::Text(String::new())),
            ("secret".into(), Attr::Text(SECRET.into())),
        ],
        ..Person::default()
    };
    let sparse = Person {
        ids: vec![("hr".into(), "2".into())],
        status: "pre-hire".into(),
        ..Person::default()
    };
    vec![full, sparse]
}

/// A deterministic generator (xorshift), so a failure reproduces from its seed.
struct Gen(u64);

/// One generated expression, rendered in both syntaxes.
struct Expr {
    cel: String,
    entra: String,
    random: bool,
}

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn leaf(&mut self) -> Expr {
        const FIELDS: &[(&str, &str)] = &[
            ("person.given_name", "[givenName]"),
            ("person.family_name", "[surname]"),
            ("person.title", "[title]"),
            ("person.department", "[department]"),
            ("person.country", "[country]"),
            ("person.start_date", "[start_date]"),
            ("person.custom.big", "[big]"),
            ("person.custom.wide", "[wide]"),
            ("person.custom.level", "[level]"),
            ("person.custom.negative", "[negative]"),
            ("person.custom.far", "[far]"),
            ("person.custom.offset", "[offset]"),
            ("person.custom.forged", "[forged]"),
            ("person.custom.forged_list", "[forged_list]"),
            ("person.custom.flag", "[flag]"),
            ("person.custom.empty", "[empty]"),
            ("person.custom.missing", "[missing]"),
            ("Redact(person.custom.secret)", "Redact([secret])"),
        ];
        const LITERALS: &[&str] = &[
            "\"\"",
            "\" \"",
            "\"a,b,,c\"",
            "\"yyyyMMddHHmmss.fZ\"",
            "\"M/d/yyyy h:mm:ss tt\"",
            "\"d\"",
            "\"yyyy\"",
            "\"ww\"",
            "\"2021-06-30+08:00\"",
            "\"(\"",
            "\"[a-z]+\"",
            "\"${0}\"",
            "\"Ø\"",
            "0",
            "1",
            "-1",
            "3",
            "100000",
            "9223372036854775807",
        ];
        if self.below(2) == 0 {
            let (cel, entra) = FIELDS[self.below(FIELDS.len())];
            Expr {
                cel: cel.into(),
                entra: entra.into(),
                random: false,
            }
        } else {
            let l = LITERALS[self.below(LITERALS.len())];
            Expr {
                cel: l.into(),
                entra: l.into(),
                random: false,
            }
        }
    }

    /// A call of a random library function, nested `depth` deep through one of its arguments.
    fn expr(&mut self, depth: usize) -> Expr {
        if depth == 0 {
            return self.leaf();
        }
        let (name, min, max) = loop {
            let name = NAMES[self.below(NAMES.len())];
            let (min, max) = arity(name);
            if max > 0 {
                break (name, min, max);
            }
        };
        // Mostly the arity the function takes; sometimes one off, which must be an error.
        let arity = match self.below(12) {
            0 => max + 1,
            1 => min.saturating_sub(1).max(1),
            _ => min + self.below(max - min + 1),
        };
        let deep = self.below(arity);
        let mut args = Vec::with_capacity(arity);
        for i in 0..arity {
            // Siblings stay shallow: depth is what is being tested, not breadth.
            args.push(if i == deep {
                self.expr(depth - 1)
            } else if self.below(4) == 0 {
                self.expr(1)
            } else {
                self.leaf()
            });
        }
        let join = |f: fn(&Expr) -> &str| args.iter().map(f).collect::<Vec<_>>().join(", ");
        Expr {
            cel: format!("{name}({})", join(|a| &a.cel)),
            entra: format!("{name}({})", join(|a| &a.entra)),
            random: RANDOM.contains(&name) || args.iter().any(|a| a.random),
        }
    }
}

/// How many arguments a library function takes (least, most; 0 for none).
fn arity(name: &str) -> (usize, usize) {
    match name {
        "Guid" | "Now" => (0, 0),
        "Append" | "BitAnd" | "Item" | "Left" | "Split" | "InTimeZone" => (2, 2),
        "DateAdd" | "DateDiff" | "Mid" | "Word" | "IIF" => (3, 3),
        "FormatDateTime" => (2, 4),
        "InStr" => (2, 4),
        "Replace" => (3, 7),
        "Switch" => (3, 6),
        "Coalesce" | "Join" | "SelectUniqueValue" | "RandomString" => (1, 4),
        "PCase" | "ToLower" | "ToUpper" | "NormalizePhone" => (1, 2),
        _ => (1, 1),
    }
}

/// A result must never carry an internal marker: no NUL unless the data had one.
fn marker_free(a: &Attr, source: &str) -> bool {
    if source.contains("forged") {
        return true; // the data itself holds NULs, and stays data
    }
    match a {
        Attr::Text(t) => !t.contains('\u{0}'),
        Attr::Many(items) => items.iter().all(|t| !t.contains('\u{0}')),
        _ => true,
    }
}

#[test]
fn generated_expressions_fail_cleanly_and_agree() {
    // `DIFFERENTIAL_ROUNDS` and `DIFFERENTIAL_SEED` widen the search.
    let rounds: usize = std::env::var("DIFFERENTIAL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let seed: u64 = std::env::var("DIFFERENTIAL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x2545_f491_4f6c_dd1d);
    // A small stack, as a host worker thread may have: deep expressions must grow
    // their own stack or be refused, never overflow this one.
    let report = std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let mut generator = Gen(seed);
            let people = people();
            let (mut ok, mut refused) = (0usize, 0usize);
            for round in 0..rounds {
                let depth = match round % 10 {
                    0 => MAX_DEPTH + generator.below(4),
                    1 => MAX_DEPTH - 1,
                    _ => 1 + generator.below(6),
                };
                let e = generator.expr(depth);
                for person in &people {
                    let outcome = catch_unwind(AssertUnwindSafe(|| {
                        (
                            evaluate_expression(&e.cel, person, NOW),
                            evaluate_expression_interpreted(&e.cel, person, NOW),
                            evaluate_entra(&e.entra, person, NOW),
                        )
                    }));
                    let Ok((fast, slow, entra)) = outcome else {
                        panic!("round {round} (seed {seed}) panicked: {}", e.cel);
                    };
                    match (&fast, &slow) {
                        (Ok(a), Ok(b)) => {
                            if !e.random {
                                assert_eq!(a, b, "round {round}: {}", e.cel);
                            }
                            assert!(marker_free(a, &e.cel), "round {round}: {} gave {a:?}", e.cel);
                            ok += 1;
                        }
                        (Err(a), Err(_)) => {
                            assert!(a.len() < 1200, "round {round}: an error too long to read: {a}");
                            assert!(
                                !a.contains(SECRET),
                                "round {round}: the error shows the secret: {a}"
                            );
                            refused += 1;
                        }
                        _ => panic!("round {round}: {}: fast {fast:?}, interpreter {slow:?}", e.cel),
                    }
                    match &entra {
                        Ok(a) => assert!(marker_free(a, &e.entra), "round {round}: {} gave {a:?}", e.entra),
                        Err(a) => assert!(
                            a.len() < 1200 && !a.contains(SECRET),
                            "round {round}: {} failed with {a}",
                            e.entra
                        ),
                    }
                    if depth > MAX_DEPTH {
                        assert!(
                            fast.is_err() && entra.is_err(),
                            "round {round}: over the limit: {}",
                            e.cel
                        );
                    }
                }
            }
            (ok, refused)
        })
        .expect("thread")
        .join()
        .expect("no crash");
    // Both outcomes must be exercised, or the generator tests nothing.
    assert!(report.0 > rounds / 10 && report.1 > rounds / 10, "{report:?}");
}
