//! Every unknown key and kind of a routes.yaml at once, each with a "did you mean".
//!
//! serde stops at the first unknown key (`deny_unknown_fields`) or unknown variant. To report
//! them all, [`step_over`] makes a copy of the text without the offending key (its line and
//! the lines of its value become blank, so every later line keeps its number) or with the
//! variant replaced by its closest known spelling, and the parse is run again on it. Only the
//! block style is stepped over; an unknown key inside a `{ flow: mapping }` ends the search.

/// Most errors of this kind reported from one file.
pub const DEFAULT_MAX_UNKNOWN_REPORTED: usize = 32;

/// What serde said about an unknown name: the name, and the names it expected.
#[derive(Debug, PartialEq, Eq)]
pub struct Unknown {
    pub kind: UnknownKind,
    pub name: String,
    pub expected: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownKind {
    Field,
    Variant,
}

/// Reads serde's "unknown field `x`, expected one of `a`, `b`" (or "unknown variant ...").
pub fn parse_message(message: &str) -> Option<Unknown> {
    let (kind, rest) = if let Some(r) = message.split_once("unknown field `") {
        (UnknownKind::Field, r.1)
    } else if let Some(r) = message.split_once("unknown variant `") {
        (UnknownKind::Variant, r.1)
    } else {
        return None;
    };
    let (name, after) = rest.split_once('`')?;
    let expected = after
        .split_once("expected")
        .map(|(_, list)| {
            list.split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Some(Unknown {
        kind,
        name: name.to_string(),
        expected,
    })
}

/// The expected name closest to `name`, if one is close enough to be a misspelling.
pub fn closest<'a>(name: &str, expected: &'a [String]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(2);
    expected
        .iter()
        .map(|c| {
            (
                strsim::levenshtein(&name.to_lowercase(), &c.to_lowercase()),
                c,
            )
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}

/// The message with a "did you mean" added when a close name exists.
pub fn with_suggestion(message: &str, unknown: &Unknown) -> String {
    match closest(&unknown.name, &unknown.expected) {
        Some(c) => format!("{message}; did you mean `{c}`?"),
        None => message.to_string(),
    }
}

/// The text with the unknown name at (`line`, `col`) (1-based) stepped over, or None when it
/// cannot be (not found there, or in flow style).
pub fn step_over(text: &str, line: usize, col: usize, unknown: &Unknown) -> Option<String> {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let idx = line.checked_sub(1)?;
    let current = lines.get(idx)?.clone();
    let start = current
        .char_indices()
        .nth(col.checked_sub(1)?)
        .map(|(i, _)| i)?;
    let at = &current[start..];
    let name_len = [
        unknown.name.clone(),
        format!("\"{}\"", unknown.name),
        format!("'{}'", unknown.name),
    ]
    .into_iter()
    .find(|n| at.starts_with(n.as_str()))?
    .len();
    match unknown.kind {
        UnknownKind::Variant => {
            let replacement = closest(&unknown.name, &unknown.expected)
                .or_else(|| unknown.expected.first().map(String::as_str))?;
            lines[idx] = format!("{}{}{}", &current[..start], replacement, &at[name_len..]);
        }
        UnknownKind::Field => {
            // Block style only: nothing but indentation and sequence dashes before the key.
            let before = &current[..start];
            if !before.chars().all(|c| c == ' ' || c == '-') {
                return None;
            }
            let indent = before.chars().count();
            lines[idx] = before.to_string();
            // The key's value on the lines below: deeper indented, blank or comment lines.
            for l in lines.iter_mut().skip(idx + 1) {
                let trimmed = l.trim_start();
                let depth = l.chars().count() - trimmed.chars().count();
                if trimmed.is_empty() || trimmed.starts_with('#') || depth > indent {
                    l.clear();
                } else {
                    break;
                }
            }
            // A sequence item left with only its dash and nothing below it: give it a body.
            if lines[idx].trim() == "-" {
                lines[idx].push_str(" {}");
            }
        }
    }
    Some(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_serdes_messages() {
        let u = parse_message(
            "server: unknown field `lisen`, expected one of `listen`, `max_body_bytes`",
        )
        .unwrap();
        assert_eq!(u.kind, UnknownKind::Field);
        assert_eq!(u.name, "lisen");
        assert_eq!(u.expected, ["listen", "max_body_bytes"]);
        assert_eq!(closest("lisen", &u.expected), Some("listen"));
        assert_eq!(closest("zzzzzz", &u.expected), None);
        let v = parse_message("unknown variant `webhok`, expected `webhook` or `slack`").unwrap();
        assert_eq!(v.kind, UnknownKind::Variant);
        assert_eq!(v.expected, ["webhook", "slack"]);
        assert!(parse_message("invalid type: string").is_none());
    }

    #[test]
    fn steps_over_a_key_and_its_value_keeping_line_numbers() {
        let text = "server:\n  lisen: x\n  nested:\n    a: 1\n    b: 2\n  admin_token: t\n";
        let u = Unknown {
            kind: UnknownKind::Field,
            name: "nested".into(),
            expected: vec![],
        };
        let out = step_over(text, 3, 3, &u).unwrap();
        assert_eq!(out, "server:\n  lisen: x\n  \n\n\n  admin_token: t\n");
        assert_eq!(out.lines().count(), text.lines().count());
        // Flow style is not stepped over.
        let flow = "auth: { bearer: x, lisen: y }\n";
        let u = Unknown {
            kind: UnknownKind::Field,
            name: "lisen".into(),
            expected: vec![],
        };
        assert_eq!(step_over(flow, 1, 20, &u), None);
    }
}
