//! Entra's expression syntax, so that mappings written for Microsoft Entra's
//! provisioning paste in as they are: `Append([userPrincipalName], ".test")`.
//! An expression is translated once, when the rule set is compiled, into the CEL
//! that the rest of the engine runs (with the same function library).
//!
//! - `[name]` is an attribute of the person: Tenure's own fields by their names
//!   (`given_name`) or Entra's (`givenName`, `surname`, `mail`, ...; see [`ALIASES`]),
//!   `appRoleAssignments` for the app assignments the rules gave the account, and
//!   any other name for a custom attribute. An attribute the person does not have
//!   (or an empty field) is NULL, as in Entra.
//! - `"text"` with `\"` and `\\` escapes; whole numbers (`-10`); `&HF7` (hex);
//!   `vbTextCompare` / `vbBinaryCompare`; `True`, `False`, `Nothing`.
//! - An argument left empty (`Switch([Active], , "1", ...)`) is NULL.
//! - `=`, `<>`, `<`, `<=`, `>`, `>=` compare (`=` and `<>` as text, NULL as `""`, as
//!   Switch matches a NULL source against the `""` key).

use crate::functions;
use crate::limits;

/// Entra's names for Tenure's person fields.
pub const ALIASES: &[(&str, &str)] = &[
    ("givenName", "given_name"),
    ("firstName", "given_name"),
    ("surname", "family_name"),
    ("sn", "family_name"),
    ("lastName", "family_name"),
    ("preferredName", "preferred_name"),
    ("mail", "email"),
    ("jobTitle", "title"),
    ("employeeType", "employment_type"),
    ("manager", "manager"),
    ("country", "country"),
    ("department", "department"),
    ("title", "title"),
];

/// Where an Entra attribute name reads from: `person.<field>` or `person.custom.<name>`,
/// or `apps` for `appRoleAssignments`.
pub fn attribute_path(name: &str) -> Result<String, String> {
    if name == "appRoleAssignments" {
        return Ok("apps".into());
    }
    if crate::fast::FIELDS.contains(&name) {
        return Ok(format!("person.{name}"));
    }
    if let Some((_, field)) = ALIASES.iter().find(|(alias, _)| *alias == name) {
        return Ok(format!("person.{field}"));
    }
    let identifier = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !identifier {
        return Err(format!(
            "[{name}]: attribute names are letters, digits and underscores"
        ));
    }
    Ok(format!("person.custom.{name}"))
}

struct Parser<'a> {
    src: &'a str,
    at: usize,
}

type R = Result<String, String>;

impl<'a> Parser<'a> {
    fn error(&self, at: usize, reason: impl Into<String>) -> String {
        let (line, column) = limits::position(self.src, at);
        format!("line {line}, column {column}: {}", reason.into())
    }

    fn rest(&self) -> &'a str {
        &self.src[self.at..]
    }

    fn skip_space(&mut self) {
        let trimmed = self.rest().trim_start();
        self.at = self.src.len() - trimmed.len();
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.rest().starts_with(token) {
            self.at += token.len();
            true
        } else {
            false
        }
    }

    /// An argument or a whole expression: an operand, maybe compared with another.
    fn expression(&mut self) -> R {
        let left = self.operand()?;
        self.skip_space();
        for (op, cel) in [
            ("<>", "ne"),
            ("<=", "<="),
            (">=", ">="),
            ("=", "eq"),
            ("<", "<"),
            (">", ">"),
        ] {
            if self.eat(op) {
                let right = self.operand()?;
                return Ok(match cel {
                    "eq" => format!("__eq({left}, {right})"),
                    "ne" => format!("__ne({left}, {right})"),
                    _ => format!("({left} {cel} {right})"),
                });
            }
        }
        Ok(left)
    }

    fn operand(&mut self) -> R {
        self.skip_space();
        let start = self.at;
        let Some(c) = self.rest().chars().next() else {
            return Err(self.error(start, "an expression is missing"));
        };
        match c {
            '[' => {
                let end = self.rest()[1..]
                    .find(']')
                    .ok_or_else(|| self.error(start, "an attribute's [ is never closed"))?;
                let name = &self.rest()[1..1 + end];
                self.at += end + 2;
                let path = attribute_path(name.trim()).map_err(|e| self.error(start, e))?;
                Ok(if path.starts_with("person.custom.") || path == "apps" {
                    path
                } else {
                    // Tenure's fields read as empty text when unknown; Entra reads NULL.
                    format!("__null({path})")
                })
            }
            '"' => self.string(),
            '(' => {
                self.at += 1;
                let inner = self.expression()?;
                if !self.eat(")") {
                    return Err(self.error(self.at, "expected )"));
                }
                Ok(format!("({inner})"))
            }
            '&' => {
                let digits: String = self.rest()[1..]
                    .strip_prefix(['H', 'h'])
                    .ok_or_else(|| self.error(start, "& starts a hex number (&HF7)"))?
                    .chars()
                    .take_while(char::is_ascii_hexdigit)
                    .collect();
                let n = i64::from_str_radix(&digits, 16)
                    .map_err(|_| self.error(start, "not a hex number (&HF7)"))?;
                self.at += 2 + digits.len();
                Ok(n.to_string())
            }
            '-' | '0'..='9' => {
                let len = self.rest()[1..].chars().take_while(char::is_ascii_digit).count() + 1;
                let number = &self.rest()[..len];
                number
                    .parse::<i64>()
                    .map_err(|_| self.error(start, format!("{number:?} is not a whole number")))?;
                self.at += len;
                Ok(number.to_string())
            }
            c if c.is_ascii_alphabetic() => {
                let len = self
                    .rest()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .count();
                let name = &self.rest()[..len];
                self.at += len;
                match name {
                    "vbTextCompare" | "vbBinaryCompare" => return Ok(format!("\"{name}\"")),
                    "True" | "true" => return Ok("true".into()),
                    "False" | "false" => return Ok("false".into()),
                    "Nothing" | "Null" => return Ok("null".into()),
                    _ => {}
                }
                if !self.eat("(") {
                    return Err(self.error(start, format!("{name} is not a function call or a constant")));
                }
                let known = functions::NAMES.contains(&name);
                if !known {
                    return Err(self.error(start, format!("{name} is not a function Tenure has")));
                }
                let mut args = Vec::new();
                self.skip_space();
                if !self.eat(")") {
                    loop {
                        self.skip_space();
                        if self.rest().starts_with([',', ')']) {
                            args.push("null".to_string());
                        } else {
                            args.push(self.expression()?);
                        }
                        if self.eat(",") {
                            continue;
                        }
                        if self.eat(")") {
                            break;
                        }
                        return Err(self.error(self.at, format!("expected , or ) in {name}(...)")));
                    }
                }
                Ok(format!("{name}({})", args.join(", ")))
            }
            other => Err(self.error(start, format!("unexpected {other:?}"))),
        }
    }

    /// A string constant: `\"` and `\\` are its escapes (any other `\x` is `x`).
    fn string(&mut self) -> R {
        let start = self.at;
        let mut out = String::from("\"");
        let mut chars = self.rest()[1..].char_indices();
        loop {
            let Some((i, c)) = chars.next() else {
                return Err(self.error(start, "a string is never closed"));
            };
            match c {
                '"' => {
                    self.at += i + 2;
                    out.push('"');
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, e)) => push_escaped(&mut out, e),
                    None => return Err(self.error(start, "a string ends with a backslash")),
                },
                c => push_escaped(&mut out, c),
            }
        }
    }
}

/// One character inside a CEL double-quoted string.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push(c),
    }
}

/// Translates an Entra expression into CEL; the error names the line and column.
pub fn translate(source: &str) -> Result<String, String> {
    if source.len() > limits::MAX_LENGTH {
        return Err(format!(
            "the expression is {} bytes long; the limit is {}",
            source.len(),
            limits::MAX_LENGTH
        ));
    }
    // The same nesting limit as CEL's, before anything recurses.
    limits::check(source)?;
    let mut p = Parser { src: source, at: 0 };
    let cel = p.expression()?;
    p.skip_space();
    if p.at < source.len() {
        return Err(p.error(
            p.at,
            format!("unexpected {:?} after the expression", &source[p.at..]),
        ));
    }
    Ok(cel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_syntax_becomes_cel() {
        assert_eq!(
            translate(r#"Append([userPrincipalName], ".test")"#).unwrap(),
            r#"Append(person.custom.userPrincipalName, ".test")"#
        );
        assert_eq!(
            translate(r#"Switch([Active], , "1", "x")"#).unwrap(),
            r#"Switch(person.custom.Active, null, "1", "x")"#
        );
        assert_eq!(translate("BitAnd(&HF, &HF7)").unwrap(), "BitAnd(15, 247)");
        assert_eq!(
            translate(r#"IIF([country]="USA",[country],[department])"#).unwrap(),
            r#"IIF(__eq(__null(person.country), "USA"), __null(person.country), __null(person.department))"#
        );
        assert_eq!(
            translate(r#""Company name: \"Contoso\" \\ done""#).unwrap(),
            r#""Company name: \"Contoso\" \\ done""#
        );
        assert_eq!(
            translate(r#"InStr("repEated","e",3,vbBinaryCompare)"#).unwrap(),
            r#"InStr("repEated", "e", 3, "vbBinaryCompare")"#
        );
        let e = translate("Append([a], \"x\"").unwrap_err();
        assert!(e.starts_with("line 1, column"), "{e}");
        assert!(
            translate("Frobnicate([a])")
                .unwrap_err()
                .contains("not a function")
        );
        assert!(translate("[a b]").unwrap_err().contains("letters"));
    }
}
