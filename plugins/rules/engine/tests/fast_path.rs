//! The fast path must give exactly the interpreter's answers: the same value,
//! or an error where the interpreter errs. A corpus of expressions, over people
//! with and without the fields they read, is evaluated both ways.

use tenure_rules_engine::{
    Attr, Person, evaluate_expression, evaluate_expression_interpreted, has_fast_path,
};

const NOW: i64 = 1_772_366_400_000;

fn people() -> Vec<Person> {
    let full = Person {
        ids: vec![("hr".into(), "1001".into())],
        given_name: Some("José".into()),
        family_name: Some("Núñez".into()),
        emails: vec![("work".into(), "jose@example.com".into(), true)],
        title: Some("Senior Engineer".into()),
        department: Some("Engineering".into()),
        location: Some("Berlin".into()),
        country: Some("DE".into()),
        start_date: Some("2026-03-02".into()),
        employment_type: Some("contractor".into()),
        status: "active".into(),
        custom: vec![
            ("level".into(), Attr::Number(5)),
            ("grade".into(), Attr::Text("L5".into())),
            ("remote".into(), Attr::Flag(true)),
            ("tags".into(), Attr::Many(vec!["a".into(), "b".into()])),
            ("none".into(), Attr::Absent),
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

/// Expressions the fast path covers.
const COVERED: &[&str] = &[
    r#"person.department == "Engineering""#,
    r#"person.department != "Sales""#,
    r#"person.department == "Engineering" && person.custom.level >= 5"#,
    r#"person.custom.level >= 5 && person.department == "Engineering""#,
    r#"person.custom.level > 3 || person.title.startsWith("VP")"#,
    r#"person.title.startsWith("VP") || person.custom.level > 3"#,
    r#"!(person.status == "terminated")"#,
    r#"person.department in ["Sales", "Engineering"]"#,
    r#"person.custom.grade in ["L5", "L6"]"#,
    r#"person.custom.level in [5, 6]"#,
    r#"person.custom.level == "5""#,
    r#"person.custom.remote == true"#,
    r#"person.custom.none == null"#,
    r#"person.team == null"#,
    r#"person.team == """#,
    r#"person.title.endsWith("Engineer")"#,
    r#"person.title.contains("nior")"#,
    r#"person.email.matches("^[a-z]+@example\\.com$")"#,
    r#"person.title.matches("(")"#,
    r#"has(person.custom.level)"#,
    r#"has(person.custom.missing)"#,
    r#"person.custom.missing == "x""#,
    r#"person.custom.missing == "x" || true"#,
    r#"true || person.custom.missing == "x""#,
    r#"person.custom.missing == "x" && false"#,
    r#"false && person.custom.missing == "x""#,
    r#"person.custom.level && true"#,
    r#"size(person.title) > 3"#,
    r#"person.title.size()"#,
    r#"size(person.custom.tags)"#,
    r#"person.given_name + " " + person.family_name"#,
    r#"person.custom.level + 1"#,
    r#"person.custom.level + "x""#,
    r#"person.custom.level > 3 ? "senior" : "junior""#,
    r#"person.department == "Sales" ? 1 : 2"#,
    r#"event == "update" && destination == "expression""#,
    r#"now < CDate(person.start_date)"#,
    r#"CDate(person.start_date) > now"#,
    r#"person.department > "A""#,
    r#"person.custom.level < "x""#,
    r#"ToLower(NormalizeDiacritics(person.given_name + "." + person.family_name))"#,
    r#"Left(ToLower(person.given_name), 1) + "." + ToLower(person.family_name)"#,
    r#"Coalesce(person.preferred_name, person.given_name)"#,
    r#"NormalizeCountry(person.country)"#,
    r#"IIF(person.custom.level > 3, "a", "b")"#,
    r#"DateAdd("d", 90, person.start_date)"#,
    r#"Switch(person.department, "Other", "Sales", "S", "Engineering", "E")"#,
    r#"Join(",", person.custom.tags)"#,
    r#"BitAnd("x", 1)"#,
    r#"person.employment_type in ["contractor", "temporary"]"#,
    r#"person.status in ["pre-hire", "active", "on-leave"]"#,
    r#"person.custom.tags == ["a", "b"]"#,
];

/// Expressions left to the interpreter.
const INTERPRETED: &[&str] = &[
    r#"person.emails.exists(e, e.endsWith("example.com"))"#,
    r#"person.custom["level"] == 5"#,
    r#"person.custom.level * 2"#,
    r#"int(person.custom.grade.substring(1)) > 3"#,
    r#"person"#,
    r#"1.5 > 1.0"#,
];

#[test]
fn the_fast_path_covers_the_common_forms() {
    for e in COVERED {
        assert!(has_fast_path(e), "not covered: {e}");
    }
    for e in INTERPRETED {
        assert!(!has_fast_path(e), "unexpectedly covered: {e}");
    }
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    /// A random value-producing expression.
    fn value(&mut self, depth: u32) -> String {
        let leaves = [
            "person.department",
            "person.title",
            "person.team",
            "person.status",
            "person.email",
            "person.custom.level",
            "person.custom.grade",
            "person.custom.remote",
            "person.custom.none",
            "person.custom.missing",
            "person.custom.tags",
            "\"Engineering\"",
            "\"L5\"",
            "\"\"",
            "5",
            "0",
            "true",
            "null",
            "event",
            "destination",
            "[\"a\", \"b\"]",
        ];
        if depth == 0 {
            return self.pick(&leaves).to_string();
        }
        match self.next() % 7 {
            0 => format!("{} + {}", self.value(depth - 1), self.value(depth - 1)),
            1 => format!(
                "({} ? {} : {})",
                self.condition(depth - 1),
                self.value(depth - 1),
                self.value(depth - 1)
            ),
            2 => format!("size({})", self.value(depth - 1)),
            3 => format!(
                "{}({})",
                self.pick(&[
                    "ToLower",
                    "ToUpper",
                    "StripSpaces",
                    "CStr",
                    "IsPresent",
                    "NormalizeDiacritics"
                ]),
                self.value(depth - 1)
            ),
            4 => format!("Coalesce({}, {})", self.value(depth - 1), self.value(depth - 1)),
            _ => self.pick(&leaves).to_string(),
        }
    }

    /// A random condition.
    fn condition(&mut self, depth: u32) -> String {
        if depth == 0 {
            return format!("{} == {}", self.value(0), self.value(0));
        }
        match self.next() % 10 {
            0 => format!(
                "({}) && ({})",
                self.condition(depth - 1),
                self.condition(depth - 1)
            ),
            1 => format!(
                "({}) || ({})",
                self.condition(depth - 1),
                self.condition(depth - 1)
            ),
            2 => format!("!({})", self.condition(depth - 1)),
            3 => format!("{} != {}", self.value(depth - 1), self.value(depth - 1)),
            4 => format!(
                "{} {} {}",
                self.value(depth - 1),
                self.pick(&["<", "<=", ">", ">="]),
                self.value(depth - 1)
            ),
            5 => format!(
                "{} in [{}, {}]",
                self.value(depth - 1),
                self.value(0),
                self.value(0)
            ),
            6 => format!(
                "{}.{}({})",
                self.value(depth - 1),
                self.pick(&["startsWith", "endsWith", "contains", "matches"]),
                self.value(0)
            ),
            7 => format!("has(person.custom.{})", self.pick(&["level", "missing", "none"])),
            8 => format!("{} in {}", self.value(0), self.value(depth - 1)),
            _ => format!("{} == {}", self.value(depth - 1), self.value(depth - 1)),
        }
    }
}

#[test]
fn random_expressions_get_the_interpreters_answers() {
    // `FAST_PATH_ROUNDS` and `FAST_PATH_SEED` widen the search.
    let rounds: usize = std::env::var("FAST_PATH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let seed: u64 = std::env::var("FAST_PATH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut generator = Gen(seed);
    let mut covered = 0;
    for round in 0..rounds {
        let e = if round % 2 == 0 {
            generator.condition(3)
        } else {
            generator.value(3)
        };
        if has_fast_path(&e) {
            covered += 1;
        }
        for person in people() {
            let fast = evaluate_expression(&e, &person, NOW);
            let slow = evaluate_expression_interpreted(&e, &person, NOW);
            match (&fast, &slow) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{e} for {:?}", person.ids),
                (Err(_), Err(_)) => {}
                _ => panic!("{e} for {:?}: fast {fast:?}, interpreter {slow:?}", person.ids),
            }
        }
    }
    assert!(
        covered * 3 > rounds * 2,
        "only {covered} of {rounds} random expressions took the fast path"
    );
}

#[test]
fn the_fast_path_answers_as_the_interpreter_does() {
    for person in people() {
        for e in COVERED.iter().chain(INTERPRETED) {
            let fast = evaluate_expression(e, &person, NOW);
            let slow = evaluate_expression_interpreted(e, &person, NOW);
            match (&fast, &slow) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{e} for {:?}", person.ids),
                (Err(a), Err(b)) => assert_eq!(a, b, "{e}: the error comes from the interpreter"),
                _ => panic!("{e} for {:?}: fast {fast:?}, interpreter {slow:?}", person.ids),
            }
        }
    }
}
