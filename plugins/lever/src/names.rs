//! Lever keeps one `name` string per person; these split it into given and family
//! names. `auto` (the default) reads the usual orders: a family-name particle
//! (Irish `Ní`/`Mac`/`Ó`, Dutch `van`, Spanish and Portuguese `de`/`da`/`dos`,
//! Arabic `bin`/`al`, ...) starts the family name, and a name led by a common
//! Vietnamese family name is read family-first; otherwise the last word is the
//! family name. Where an HR system is linked, its given and family names are
//! better still (see the README: `identity.authority`).

/// How a full name is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NameSplit {
    Auto,
    /// The last word is the family name ("Ana Maria Silva" -> "Ana Maria" + "Silva").
    LastSpace,
    /// The first word is the given name ("Ana Maria Silva" -> "Ana" + "Maria Silva").
    FirstSpace,
}

/// Words that begin a family name when they follow the given name.
const PARTICLES: &[&str] = &[
    "ní", "nic", "ní", "mac", "mag", "ó", "uí", "ua", "van", "von", "der", "den", "de", "del", "della", "di",
    "da", "das", "do", "dos", "du", "la", "le", "ter", "ten", "zu", "bin", "binti", "ibn", "al", "el", "af",
    "av",
];

/// Family names that lead a Vietnamese full name (written with their diacritics, or
/// the unmistakable ASCII "Nguyen").
const VIETNAMESE_FAMILY: &[&str] = &[
    "nguyễn", "nguyen", "trần", "lê", "phạm", "hoàng", "huỳnh", "phan", "vũ", "võ", "đặng", "bùi", "đỗ",
    "hồ", "ngô", "dương", "lý", "đinh", "trương", "lâm", "đào", "lưu",
];

/// Splits a full name into (given, family).
pub fn split(name: &str, how: NameSplit) -> (Option<String>, Option<String>) {
    let words: Vec<&str> = name.split_whitespace().collect();
    let join = |w: &[&str]| Some(w.join(" ")).filter(|s| !s.is_empty());
    match words.len() {
        0 => return (None, None),
        1 => return (join(&words), None),
        _ => {}
    }
    let at = match how {
        NameSplit::LastSpace => words.len() - 1,
        NameSplit::FirstSpace => 1,
        NameSplit::Auto => {
            let lower = |w: &str| w.to_lowercase();
            if VIETNAMESE_FAMILY.contains(&lower(words[0]).as_str()) {
                return (join(&words[1..]), join(&words[..1]));
            }
            (1..words.len() - 1)
                .find(|&i| PARTICLES.contains(&lower(words[i]).as_str()))
                .unwrap_or(words.len() - 1)
        }
    };
    (join(&words[..at]), join(&words[at..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto(name: &str) -> (Option<String>, Option<String>) {
        split(name, NameSplit::Auto)
    }

    fn both(given: &str, family: &str) -> (Option<String>, Option<String>) {
        (Some(given.into()), Some(family.into()))
    }

    #[test]
    fn auto_reads_particles_and_family_first_names() {
        assert_eq!(auto("Siobhán Ní Bhriain"), both("Siobhán", "Ní Bhriain"));
        assert_eq!(auto("Nguyễn Thị Lan"), both("Thị Lan", "Nguyễn"));
        assert_eq!(auto("Ana Maria da Silva"), both("Ana Maria", "da Silva"));
        assert_eq!(auto("Ludwig van Beethoven"), both("Ludwig", "van Beethoven"));
        assert_eq!(auto("María de la Cruz"), both("María", "de la Cruz"));
        assert_eq!(auto("Shane Q  Smith"), both("Shane Q", "Smith"));
        // A particle as the last word is a name, not a particle.
        assert_eq!(auto("Jean Le"), both("Jean", "Le"));
        assert_eq!(auto("Cher"), (Some("Cher".into()), None));
        assert_eq!(auto("   "), (None, None));
    }

    #[test]
    fn the_fixed_rules_split_where_they_say() {
        assert_eq!(
            split("Ana Maria  Silva", NameSplit::LastSpace),
            both("Ana Maria", "Silva")
        );
        assert_eq!(
            split("Ana Maria Silva", NameSplit::FirstSpace),
            both("Ana", "Maria Silva")
        );
    }
}
