//! Limits on what an expression may be, checked before it is parsed, so that no
//! expression can exhaust the stack (CEL's parser and evaluator recurse once per
//! nesting level and per operator of a chain) or take unbounded time. Each error
//! names the line and column where the limit was passed.

/// Longest expression, in bytes.
pub const MAX_LENGTH: usize = 4096;
/// Deepest nesting of parentheses, brackets and braces (calls, IIFs, groups, lists).
pub const MAX_DEPTH: usize = 24;
/// Most binary and ternary operators in one expression (each adds a level to the tree).
pub const MAX_OPERATORS: usize = 128;
/// Most arguments or list items between one pair of brackets.
pub const MAX_ITEMS: usize = 256;

/// Runs `f` with enough stack for the deepest expression the limits allow (natively:
/// on a bigger stack when less than `RED_ZONE` is left; in WebAssembly the plugin's
/// stack is sized for them).
pub fn with_stack<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(not(target_family = "wasm"))]
    {
        const RED_ZONE: usize = 4 << 20;
        const STACK: usize = 32 << 20;
        stacker::maybe_grow(RED_ZONE, STACK, f)
    }
    #[cfg(target_family = "wasm")]
    {
        f()
    }
}

/// An expression as an error message quotes it: whole when short, else its start.
pub fn quoted(source: &str) -> String {
    const SHOWN: usize = 200;
    if source.chars().count() <= SHOWN {
        return format!("`{source}`");
    }
    let start: String = source.chars().take(SHOWN).collect();
    format!("`{start}…` ({} bytes)", source.len())
}

/// A function's error message, kept readable when it quotes a huge input: at most
/// `SHOWN` characters, its start and its end kept.
pub fn brief(message: String) -> String {
    const SHOWN: usize = 300;
    const TAIL: usize = 60;
    let count = message.chars().count();
    if count <= SHOWN {
        return message;
    }
    let head: String = message.chars().take(SHOWN - TAIL).collect();
    let tail: String = message.chars().skip(count - TAIL).collect();
    format!("{head}… ({} characters left out) …{tail}", count - SHOWN)
}

/// 1-based line and column of byte `at` in `source`.
pub fn position(source: &str, at: usize) -> (usize, usize) {
    let before = &source[..at.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Longest run of member accesses, indexes and calls on one value (`a.b[0].c()`):
/// each is a level of the tree, as deep as a nesting.
pub const MAX_CHAIN: usize = 32;

/// CEL's comprehension macros: each nests a scope as well as a call, so counts twice.
const MACROS: &[&str] = &["all", "exists", "exists_one", "map", "filter"];

/// One open bracket.
struct Level {
    /// Arguments or items so far.
    items: usize,
    /// The chain of the value before the bracket, resumed when it closes.
    chain: usize,
    /// Levels it counts for.
    weight: usize,
}

/// Whether the byte ends an operand, so that a following `.`, `[` or `(` applies to it.
fn ends_operand(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b')' | b']' | b'}' | b'"' | b'\'')
}

/// Whether the identifier before byte `at` is a macro called as a method (`.exists`).
fn is_macro_call(bytes: &[u8], at: usize) -> bool {
    let name_start = bytes[..at]
        .iter()
        .rposition(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .map_or(0, |p| p + 1);
    name_start > 0
        && bytes[name_start - 1] == b'.'
        && std::str::from_utf8(&bytes[name_start..at]).is_ok_and(|n| MACROS.contains(&n))
}

/// Checks an expression's size and shape; the error names the limit and where it was passed.
pub fn check(source: &str) -> Result<(), String> {
    check_with(source, MAX_DEPTH)
}

/// [`check`] with another depth: Tenure's translation of an Entra expression (already
/// checked as written) adds up to [`TRANSLATION_SLACK`] levels.
pub fn check_with(source: &str, max_depth: usize) -> Result<(), String> {
    if source.len() > MAX_LENGTH {
        return Err(format!(
            "the expression is {} bytes long; the limit is {MAX_LENGTH}",
            source.len()
        ));
    }
    let at = |i: usize, what: String| {
        let (line, column) = position(source, i);
        Err(format!("line {line}, column {column}: {what}"))
    };
    let bytes = source.as_bytes();
    let mut open: Vec<Level> = Vec::new();
    let (mut depth, mut operators, mut chain) = (0usize, 0usize, 0usize);
    let mut quote: Option<u8> = None;
    // The last byte outside strings that is not a space.
    let mut prev = b' ';
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(q) = quote {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == q {
                quote = None;
                prev = c;
            }
            i += 1;
            continue;
        }
        let next = bytes.get(i + 1).copied();
        let mut link = false;
        match c {
            b'"' | b'\'' => {
                quote = Some(c);
                chain = 0;
            }
            b'(' | b'[' | b'{' => {
                if c != b'{' && ends_operand(prev) {
                    link = true;
                }
                let weight = if c == b'(' && is_macro_call(bytes, i) {
                    2
                } else {
                    1
                };
                open.push(Level {
                    items: 1,
                    chain: chain + usize::from(link),
                    weight,
                });
                depth += weight;
                if depth > max_depth {
                    return at(i, format!("nested more than {max_depth} levels deep"));
                }
                chain = 0;
            }
            b')' | b']' | b'}' => {
                if let Some(level) = open.pop() {
                    depth -= level.weight;
                    chain = level.chain;
                }
            }
            b'.' if ends_operand(prev) && next.is_some_and(|n| n.is_ascii_alphabetic() || n == b'_') => {
                link = true;
            }
            b',' => {
                chain = 0;
                if let Some(level) = open.last_mut() {
                    level.items += 1;
                    if level.items > MAX_ITEMS {
                        return at(i, format!("more than {MAX_ITEMS} arguments or items in one list"));
                    }
                }
            }
            b'&' | b'|' if next == Some(c) => {
                operators += 1;
                chain = 0;
                i += 1;
            }
            b'=' | b'!' | b'<' | b'>' if next == Some(b'=') => {
                operators += 1;
                chain = 0;
                i += 1;
            }
            b'<' | b'>' | b'+' | b'-' | b'*' | b'/' | b'%' | b'?' => {
                operators += 1;
                chain = 0;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' || c.is_ascii_whitespace() => {}
            _ => chain = 0,
        }
        if link {
            let length = if c == b'.' {
                chain + 1
            } else {
                open.last().map_or(0, |l| l.chain)
            };
            if c == b'.' {
                chain = length;
            }
            if length > MAX_CHAIN {
                return at(
                    i,
                    format!("more than {MAX_CHAIN} member accesses, indexes or calls in a row"),
                );
            }
        }
        if operators > MAX_OPERATORS {
            return at(
                i,
                format!("more than {MAX_OPERATORS} operators in one expression"),
            );
        }
        if !c.is_ascii_whitespace() {
            prev = c;
        }
        i += 1;
    }
    Ok(())
}

/// Levels Tenure's translation of an Entra expression may add (`[x]` reads through
/// a call, a comparison becomes one).
pub const TRANSLATION_SLACK: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_name_where_they_were_passed() {
        assert!(check("Left(person.given_name, 3)").is_ok());
        let deep = format!("{}x{}", "f(".repeat(MAX_DEPTH + 1), ")".repeat(MAX_DEPTH + 1));
        // The bracket that goes one level too deep is named: `f(` takes two columns.
        let e = check(&deep).unwrap_err();
        assert!(
            e.starts_with(&format!("line 1, column {}:", 2 * (MAX_DEPTH + 1))),
            "{e}"
        );
        let chain = vec!["a"; MAX_OPERATORS + 2].join(" + ");
        assert!(check(&chain).unwrap_err().contains("operators"));
        let wide = format!("[{}]", vec!["1"; MAX_ITEMS + 1].join(","));
        assert!(check(&wide).unwrap_err().contains("items"));
        // Brackets and operators inside strings do not count.
        assert!(check(&format!("\"{}\"", "((((+".repeat(100))).is_ok());
        assert!(check("a\n  + (b").is_ok());
        assert_eq!(position("a\nbc", 3), (2, 2));
        // Chains of accesses count as a whole; separate reads do not add up.
        assert!(check(&format!("x{}", ".a".repeat(MAX_CHAIN))).is_ok());
        let e = check(&format!("x{}", ".a".repeat(MAX_CHAIN + 1))).unwrap_err();
        assert!(e.contains("in a row"), "{e}");
        assert!(
            check(&format!("[1]{}", "[0]".repeat(MAX_CHAIN + 1)))
                .unwrap_err()
                .contains("in a row")
        );
        assert!(
            check(&format!("x{}", ".f()".repeat(MAX_CHAIN / 2 + 1)))
                .unwrap_err()
                .contains("in a row")
        );
        assert!(check(&format!("[{}]", vec!["person.custom.level"; 100].join(", "))).is_ok());
        assert!(check("f(a.b.c).d + 1.5 + \"s\".size()").is_ok());
        // Comprehension macros count two levels each.
        let exists = format!(
            "{}true{}",
            "[1].exists(x, ".repeat(MAX_DEPTH / 2 + 1),
            ")".repeat(MAX_DEPTH / 2 + 1)
        );
        assert!(check(&exists).unwrap_err().contains("nested"));
    }
}
