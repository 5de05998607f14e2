//! Alertmanager-style label matchers: `name="value"`, `name!="value"`, `name=~"regex"`,
//! `name!~"regex"`. Regexes are anchored at both ends, as in Alertmanager, and a label that is
//! missing matches as the empty string.

use std::fmt;

use regex::Regex;
use thiserror::Error;

/// The four matcher operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// Why a matcher string was refused.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum MatcherError {
    #[error("empty matcher")]
    Empty,
    #[error("matcher `{0}` has no operator (expected one of =, !=, =~, !~)")]
    NoOperator(String),
    #[error("matcher `{0}` has no label name before its operator")]
    NoName(String),
    #[error("invalid label name `{0}` (letters, digits and `_`, not starting with a digit)")]
    BadName(String),
    #[error("matcher `{matcher}`: unterminated quoted value")]
    Unterminated { matcher: String },
    #[error("matcher `{matcher}`: unexpected text after the quoted value: `{rest}`")]
    TrailingText { matcher: String, rest: String },
    #[error("matcher `{matcher}`: invalid escape `\\{escape}` in quoted value")]
    BadEscape { matcher: String, escape: char },
    #[error("matcher `{matcher}`: invalid regex: {reason}")]
    BadRegex { matcher: String, reason: String },
}

/// One compiled matcher.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl Matcher {
    /// Parses one matcher in Alertmanager's syntax. The value may be double-quoted (with
    /// `\"`, `\\` and `\n` escapes) or bare.
    pub fn parse(input: &str) -> Result<Matcher, MatcherError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(MatcherError::Empty);
        }
        let (name_end, op, op_len) =
            find_operator(s).ok_or_else(|| MatcherError::NoOperator(s.to_string()))?;
        let name = s[..name_end].trim();
        if name.is_empty() {
            return Err(MatcherError::NoName(s.to_string()));
        }
        if !valid_label_name(name) {
            return Err(MatcherError::BadName(name.to_string()));
        }
        let raw_value = s[name_end + op_len..].trim();
        let value = unquote(raw_value, s)?;
        Matcher::new(name, op, &value).map_err(|e| match e {
            MatcherError::BadRegex { reason, .. } => MatcherError::BadRegex {
                matcher: s.to_string(),
                reason,
            },
            other => other,
        })
    }

    /// A matcher from its parts (Alertmanager's API form: name, value, isRegex, isEqual),
    /// checked as [`Matcher::parse`] checks the written form.
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Matcher, MatcherError> {
        let shown = format!("{name}{}{value:?}", op.as_str());
        if name.is_empty() {
            return Err(MatcherError::NoName(shown));
        }
        if !valid_label_name(name) {
            return Err(MatcherError::BadName(name.to_string()));
        }
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => {
                Some(Regex::new(&format!("^(?:{value})$")).map_err(|e| {
                    MatcherError::BadRegex {
                        matcher: shown.clone(),
                        reason: e
                            .to_string()
                            .lines()
                            .last()
                            .unwrap_or_default()
                            .trim_start_matches("error: ")
                            .to_string(),
                    }
                })?)
            }
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// Whether `value` (the label's value, `""` when it is missing) satisfies this matcher.
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            // parse() always compiles a regex for the regex operators.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

/// Parses a set of matchers as Alertmanager's UI and amtool take them: `{a="b", c=~"d"}`
/// or the same without braces; commas inside quoted values do not split. Empty: no matchers.
pub fn parse_set(input: &str) -> Result<Vec<Matcher>, MatcherError> {
    let s = input.trim();
    let s = s
        .strip_prefix('{')
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or(s);
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                if !s[start..i].trim().is_empty() {
                    out.push(Matcher::parse(&s[start..i])?);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    if !s[start..].trim().is_empty() {
        out.push(Matcher::parse(&s[start..])?);
    }
    Ok(out)
}

fn find_operator(s: &str) -> Option<(usize, MatchOp, usize)> {
    let bytes = s.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'"' {
            return None;
        }
        if b == b'!' {
            return match bytes.get(i + 1) {
                Some(b'=') => Some((i, MatchOp::NotEqual, 2)),
                Some(b'~') => Some((i, MatchOp::NotRegex, 2)),
                _ => None,
            };
        }
        if b == b'=' {
            return match bytes.get(i + 1) {
                Some(b'~') => Some((i, MatchOp::Regex, 2)),
                _ => Some((i, MatchOp::Equal, 1)),
            };
        }
    }
    None
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unquote(raw: &str, matcher: &str) -> Result<String, MatcherError> {
    let Some(inner) = raw.strip_prefix('"') else {
        return Ok(raw.to_string());
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '"')) => out.push('"'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, other)) => {
                    return Err(MatcherError::BadEscape {
                        matcher: matcher.to_string(),
                        escape: other,
                    })
                }
                None => break,
            },
            '"' => {
                let rest = inner[i + 1..].trim();
                if !rest.is_empty() {
                    return Err(MatcherError::TrailingText {
                        matcher: matcher.to_string(),
                        rest: rest.to_string(),
                    });
                }
                return Ok(out);
            }
            c => out.push(c),
        }
    }
    Err(MatcherError::Unterminated {
        matcher: matcher.to_string(),
    })
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_splits_on_commas_outside_quotes() {
        let set = parse_set(r#"{team="db,ops", severity=~"crit.*",}"#).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set[0].value, "db,ops");
        assert_eq!(set[1].op, MatchOp::Regex);
        assert_eq!(parse_set(r#"a="x\"," , b!=y"#).unwrap()[0].value, "x\",");
        assert!(parse_set("  ").unwrap().is_empty());
        assert!(parse_set("{}").unwrap().is_empty());
        assert!(matches!(
            parse_set("a=\"b\", nonsense"),
            Err(MatcherError::NoOperator(_))
        ));
    }

    fn m(s: &str) -> Matcher {
        Matcher::parse(s).unwrap()
    }

    #[test]
    fn parses_the_four_operators() {
        assert_eq!(m(r#"a="b""#).op, MatchOp::Equal);
        assert_eq!(m(r#"a!="b""#).op, MatchOp::NotEqual);
        assert_eq!(m(r#"a=~"b""#).op, MatchOp::Regex);
        assert_eq!(m(r#"a!~"b""#).op, MatchOp::NotRegex);
        let bare = m("service = api");
        assert_eq!(
            (bare.name.as_str(), bare.value.as_str()),
            ("service", "api")
        );
    }

    #[test]
    fn regexes_are_anchored() {
        let re = m(r#"service=~"db-.*""#);
        assert!(re.matches("db-main"));
        assert!(!re.matches("my-db-main"));
        let alt = m(r#"severity=~"critical|error""#);
        assert!(alt.matches("error"));
        assert!(!alt.matches("errors"));
        assert!(!m(r#"x!~"a|b""#).matches("a"));
        assert!(m(r#"x!~"a|b""#).matches("ab"));
    }

    #[test]
    fn missing_label_is_the_empty_string() {
        assert!(m(r#"team="""#).matches(""));
        assert!(m(r#"team!="ops""#).matches(""));
        assert!(m(r#"team=~".*""#).matches(""));
        assert!(!m(r#"team=~".+""#).matches(""));
    }

    #[test]
    fn quoted_values_unescape() {
        assert_eq!(m(r#"a="x\"y\\z""#).value, "x\"y\\z");
        assert_eq!(m(r#"a="has=sign""#).value, "has=sign");
    }

    #[test]
    fn bad_matchers_are_refused_with_reasons() {
        assert_eq!(Matcher::parse("  "), Err(MatcherError::Empty));
        assert!(matches!(
            Matcher::parse("severity"),
            Err(MatcherError::NoOperator(_))
        ));
        assert!(matches!(
            Matcher::parse(r#"="x""#),
            Err(MatcherError::NoName(_))
        ));
        assert!(matches!(
            Matcher::parse(r#"1a="x""#),
            Err(MatcherError::BadName(_))
        ));
        assert!(matches!(
            Matcher::parse(r#"a="x"#),
            Err(MatcherError::Unterminated { .. })
        ));
        assert!(matches!(
            Matcher::parse(r#"a="x" y"#),
            Err(MatcherError::TrailingText { .. })
        ));
        let err = Matcher::parse(r#"a=~"(unclosed""#).unwrap_err();
        assert!(matches!(err, MatcherError::BadRegex { .. }), "{err}");
    }
}
