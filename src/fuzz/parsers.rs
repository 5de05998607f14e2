//! The matcher parser, and the duration and rate parser.

use super::*;

// ---------------------------------------------------------------------------------------
// Matchers
// ---------------------------------------------------------------------------------------

/// Writes `value` quoted as the matcher syntax reads it.
fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn check_matcher_error(input: &str) -> Result<(), TestCaseError> {
    if let Err(e) = Matcher::parse(input) {
        prop_assert!(
            !e.to_string().trim().is_empty(),
            "empty error for {input:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_matcher_arbitrary_text(input in ".{0,64}") {
        check_matcher_error(&input)?;
    }

    #[test]
    fn fuzz_matcher_near_the_syntax(
        parts in prop::collection::vec(
            prop_oneof![
                prop::sample::select(vec!["=", "!=", "=~", "!~", "!", "~", "\"", "\\", "\\\"", "(", ")", "[", "*", "{", "}", " ", "a", "_", "9", "\u{e9}", "\n"]).prop_map(str::to_string),
                "[a-z_]{1,6}",
            ],
            0..12,
        ),
    ) {
        check_matcher_error(&parts.concat())?;
    }

    /// A matcher written from its parts reads back as those parts, and an equality matcher
    /// matches exactly its value.
    #[test]
    fn fuzz_matcher_round_trip(
        name in "[a-zA-Z_][a-zA-Z0-9_]{0,12}",
        op in prop::sample::select(vec![MatchOp::Equal, MatchOp::NotEqual, MatchOp::Regex, MatchOp::NotRegex]),
        value in ".{0,24}",
    ) {
        let text = format!("{name}{}{}", op.as_str(), quote(&value));
        match Matcher::parse(&text) {
            Ok(m) => {
                prop_assert_eq!(&m.name, &name);
                prop_assert_eq!(m.op, op);
                prop_assert_eq!(&m.value, &value);
                match op {
                    MatchOp::Equal => prop_assert!(m.matches(&value)),
                    MatchOp::NotEqual => prop_assert!(!m.matches(&value)),
                    _ => {}
                }
            }
            // Only a value that is not a valid regex may be refused.
            Err(e) => {
                prop_assert!(matches!(op, MatchOp::Regex | MatchOp::NotRegex), "{text:?}: {e}");
                prop_assert!(e.to_string().contains("invalid regex"), "{e}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Durations and rates
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fuzz_duration_arbitrary_text(input in ".{0,32}") {
        if let Err(e) = parse_duration(&input) {
            let text = e.to_string();
            prop_assert!(text.contains("is not a duration"), "{text}");
        }
        if let Err(e) = parse_rate(&input) {
            let text = e.to_string();
            prop_assert!(text.contains("is not a rate"), "{text}");
        }
    }

    /// Durations written from parts read back as their sum; overflow is an error, not a panic.
    #[test]
    fn fuzz_duration_parts_sum(
        parts in prop::collection::vec(
            (prop_oneof![0u64..1000, any::<u64>()], prop::sample::select(vec!["ms", "s", "m", "h", "d"])),
            1..5,
        ),
    ) {
        let text: String = parts.iter().map(|(n, u)| format!("{n}{u}")).collect();
        let expected = parts.iter().try_fold(Duration::ZERO, |acc, (n, u)| {
            let ms: u64 = match *u { "ms" => 1, "s" => 1_000, "m" => 60_000, "h" => 3_600_000, _ => 86_400_000 };
            acc.checked_add(Duration::from_millis(n.checked_mul(ms)?))
        });
        match (parse_duration(&text), expected) {
            (Ok(d), Some(e)) => prop_assert_eq!(d, e),
            (Err(e), None) => prop_assert!(e.to_string().contains(&text)),
            (got, want) => prop_assert!(false, "{text}: got {got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn fuzz_rate_parts(n in any::<u64>(), unit in prop::sample::select(vec!["s", "sec", "second", "m", "min", "minute", "h", "hour", "d", "", "x"])) {
        let text = format!("{n}/{unit}");
        let per = match unit {
            "s" | "sec" | "second" => Some(1),
            "m" | "min" | "minute" => Some(60),
            "h" | "hour" => Some(3600),
            _ => None,
        };
        match (parse_rate(&text), per) {
            (Ok(r), Some(p)) => {
                prop_assert_eq!(u64::from(r.count), n);
                prop_assert_eq!(r.per, Duration::from_secs(p));
            }
            (Err(e), p) => {
                prop_assert!(p.is_none() || n == 0 || n > u64::from(u32::MAX), "{text}: {e}");
                prop_assert!(e.to_string().contains(&text));
            }
            (Ok(r), None) => prop_assert!(false, "{text} read as {r:?}"),
        }
    }
}
