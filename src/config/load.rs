//! Loading routes.yaml: read the file, interpolate `${VAR}` / `${VAR:-default}` from the
//! environment, parse it (the one place YAML is parsed), and keep the place of every node so
//! that later checks can report `file:line:col`.
//!
//! Interpolation works on the text, before parsing, as Vector's does: a value is inserted as
//! written, so `${VAR}` can stand for a number or a whole scalar. Values may not contain a
//! newline (that would shift every later line number). Comments are not interpolated. Columns
//! of errors are mapped back to the file as written, so they point at the `${` of a
//! substitution rather than into the inserted value.

use std::collections::HashMap;
use std::path::Path;

use saphyr_parser::{Event, Parser, Span};

use crate::config::types::RawConfig;
use crate::config::unknown_keys;
use crate::config::validate::validate;
use crate::config::{ConfigError, ConfigErrors};

/// One step of a path into the document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// A parsed, interpolated and validated routes.yaml.
#[derive(Debug)]
pub struct LoadedConfig {
    /// The file name as given (used in every error).
    pub file: String,
    /// What the user wrote, typed.
    pub raw: RawConfig,
    positions: Positions,
}

impl LoadedConfig {
    /// An error at the node `path` (or, when that node is not in the file, at its nearest
    /// ancestor that is).
    pub fn error_at(&self, path: &[PathSeg], message: impl Into<String>) -> ConfigError {
        let (line, col) = self.positions.find(path);
        ConfigError {
            file: self.file.clone(),
            line,
            col,
            message: message.into(),
        }
    }
}

/// Reads, interpolates, parses and validates `path`. Every problem found is returned, each
/// with its place in the file.
pub fn load_file(path: &Path) -> Result<LoadedConfig, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: file.clone(),
        line: 0,
        col: 0,
        message: format!("cannot read the config file: {e}"),
    })?;
    load_str(&file, &text, &|name| std::env::var(name).ok())
}

/// As [`load_file`], for text already read; `env` looks variables up.
pub fn load_str(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<LoadedConfig, ConfigErrors> {
    let interpolated = interpolate(text, env).map_err(|errs| {
        let mut out = ConfigErrors::default();
        out.extend(errs.into_iter().map(|(line, col, message)| ConfigError {
            file: file.to_string(),
            line,
            col,
            message,
        }));
        out
    })?;
    let (raw, positions) = parse_document(&interpolated.text).map_err(|errs| {
        let mut out = ConfigErrors::default();
        out.extend(errs.into_iter().map(|(line, col, message)| ConfigError {
            file: file.to_string(),
            line,
            col: interpolated.original_col(line, col),
            message,
        }));
        out
    })?;
    let positions = Positions {
        nodes: positions
            .into_iter()
            .map(|(path, (line, col))| (path, (line, interpolated.original_col(line, col))))
            .collect(),
    };
    let loaded = LoadedConfig {
        file: file.to_string(),
        raw,
        positions,
    };
    let mut errors = validate(&loaded);
    if errors.is_empty() {
        Ok(loaded)
    } else {
        errors.sort();
        Err(errors)
    }
}

/// Where each node of the document starts: 1-based line and column.
#[derive(Debug, Default)]
struct Positions {
    nodes: HashMap<Vec<PathSeg>, (usize, usize)>,
}

impl Positions {
    fn find(&self, path: &[PathSeg]) -> (usize, usize) {
        let mut p = path;
        loop {
            if let Some(&pos) = self.nodes.get(p) {
                return pos;
            }
            match p.split_last() {
                Some((_, parent)) => p = parent,
                None => return (1, 1),
            }
        }
    }
}

/// Where each node starts, by path: (line, column), both 1-based.
type NodePlaces = HashMap<Vec<PathSeg>, (usize, usize)>;

/// A problem at (line, column), both 1-based.
type Located = (usize, usize, String);

/// Parses the YAML document: the typed config, and the place of every node. This is the only
/// function that parses YAML. Unknown keys and kinds are all reported at once, each with a
/// "did you mean" (see [`unknown_keys`]); other errors stop at the first.
fn parse_document(text: &str) -> Result<(RawConfig, NodePlaces), Vec<Located>> {
    let mut errors: Vec<Located> = Vec::new();
    let mut current = std::borrow::Cow::Borrowed(text);
    loop {
        let e = match serde_yaml::from_str::<RawConfig>(&current) {
            Ok(raw) if errors.is_empty() => return Ok((raw, node_positions(text))),
            Ok(_) => return Err(errors),
            Err(e) => e,
        };
        let (line, col) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        // The place goes in front as file:line:col; drop serde's own copy of it.
        let mut message = e
            .to_string()
            .replacen(&format!(" at line {line} column {col}"), "", 1);
        // libyaml's word for a tab is "character that cannot start any token": say it.
        let at = current
            .lines()
            .nth(line.saturating_sub(1))
            .and_then(|l| l.chars().nth(col.saturating_sub(1)));
        if at == Some('\t') {
            message.push_str(" (a tab: indent routes.yaml with spaces)");
        }
        let unknown = unknown_keys::parse_message(&message);
        if let Some(u) = &unknown {
            message = unknown_keys::with_suggestion(&message, u);
        }
        errors.push((line, col, message));
        let next = unknown
            .filter(|_| errors.len() < unknown_keys::DEFAULT_MAX_UNKNOWN_REPORTED)
            .and_then(|u| unknown_keys::step_over(&current, line, col, &u));
        match next {
            Some(t) => current = std::borrow::Cow::Owned(t),
            None => return Err(errors),
        }
    }
}

/// Walks the YAML events and records where each node (by path) starts. Called only on text
/// that serde already accepted, so a scanner error just ends the walk.
fn node_positions(text: &str) -> NodePlaces {
    enum Frame {
        Map { key: Option<String> },
        Seq { next: usize },
    }
    let mut out = HashMap::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut path: Vec<PathSeg> = Vec::new();
    let at = |span: &Span| (span.start.line(), span.start.col() + 1);

    // Called for every node; returns the node's path segment (None for a mapping key).
    fn enter(stack: &mut [Frame], node_key: Option<&str>) -> Option<Option<PathSeg>> {
        match stack.last_mut() {
            None => Some(None),
            Some(Frame::Map { key }) => match key.take() {
                None => {
                    *key = Some(node_key.unwrap_or("?").to_string());
                    None
                }
                Some(k) => Some(Some(PathSeg::Key(k))),
            },
            Some(Frame::Seq { next }) => {
                let i = *next;
                *next += 1;
                Some(Some(PathSeg::Index(i)))
            }
        }
    }

    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else { break };
        match event {
            Event::Scalar(value, ..) => {
                if let Some(seg) = enter(&mut stack, Some(&value)) {
                    let mut p = path.clone();
                    p.extend(seg);
                    out.insert(p, at(&span));
                }
            }
            Event::Alias(_) => {
                if let Some(seg) = enter(&mut stack, None) {
                    let mut p = path.clone();
                    p.extend(seg);
                    out.insert(p, at(&span));
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(event, Event::MappingStart(..));
                let seg = enter(&mut stack, None);
                // A complex (non-scalar) key: its insides have no useful path.
                let seg = seg.unwrap_or(Some(PathSeg::Key("?".into())));
                path.extend(seg);
                out.entry(path.clone()).or_insert(at(&span));
                stack.push(if is_map {
                    Frame::Map { key: None }
                } else {
                    Frame::Seq { next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                if !stack.is_empty() {
                    path.pop();
                }
            }
            _ => {}
        }
    }
    out
}

/// The text after interpolation, with what is needed to map its columns back.
struct Interpolated {
    text: String,
    /// Per line (1-based, index line-1): the substitutions made on it, in order.
    subs: Vec<Vec<Substitution>>,
}

/// One `${...}` (or `$$`) replaced on a line; columns are 1-based, in characters.
#[derive(Debug, Clone, Copy)]
struct Substitution {
    orig_start: usize,
    orig_len: usize,
    new_start: usize,
    new_len: usize,
}

impl Interpolated {
    /// Maps a column of the interpolated text to the column as written.
    fn original_col(&self, line: usize, col: usize) -> usize {
        let Some(subs) = line.checked_sub(1).and_then(|i| self.subs.get(i)) else {
            return col;
        };
        let mut delta: isize = 0;
        for s in subs {
            if col < s.new_start {
                break;
            }
            if col < s.new_start + s.new_len {
                return s.orig_start;
            }
            delta = (s.orig_start + s.orig_len) as isize - (s.new_start + s.new_len) as isize;
        }
        (col as isize + delta).max(1) as usize
    }
}

/// Replaces `${VAR}`, `${VAR:-default}` and `$$` outside comments. `${VAR:-default}` takes
/// the default when VAR is unset or empty; `${VAR}` unset is an error naming VAR.
/// Most bytes a `${file:...}` secret may hold.
pub const DEFAULT_MAX_SECRET_FILE_BYTES: u64 = 64 * 1024;

/// The value of `${file:PATH}`: the file's text without its trailing newline (as `echo` and
/// most secret tools write it). One line only, like any substituted value.
fn read_secret_file(path: &str) -> Result<String, String> {
    let path = path.trim();
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("`${{file:{path}}}`: cannot read the file: {e}"))?;
    if meta.len() > DEFAULT_MAX_SECRET_FILE_BYTES {
        return Err(format!(
            "`${{file:{path}}}`: the file has {} bytes; a secret file may have at most {DEFAULT_MAX_SECRET_FILE_BYTES}",
            meta.len()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("`${{file:{path}}}`: cannot read the file: {e}"))?;
    let value = text.strip_suffix('\n').unwrap_or(&text);
    let value = value.strip_suffix('\r').unwrap_or(value);
    if value.contains('\n') {
        return Err(format!(
            "`${{file:{path}}}`: the file has more than one line; a substituted value must be one line"
        ));
    }
    Ok(value.to_string())
}

fn interpolate(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, Vec<Located>> {
    let mut out = String::with_capacity(text.len());
    let mut subs = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let lineno = i + 1;
        let mut line_subs = Vec::new();
        let chars: Vec<char> = line.chars().collect();
        let mut new_col = 1;
        let mut j = 0;
        let (mut in_single, mut in_double) = (false, false);
        while j < chars.len() {
            let c = chars[j];
            let col = j + 1;
            // A comment starts at `#` at the line start or after white space, outside quotes.
            if c == '#' && !in_single && !in_double && (j == 0 || chars[j - 1].is_whitespace()) {
                out.extend(&chars[j..]);
                break;
            }
            match c {
                '\'' if !in_double => in_single = !in_single,
                '"' if !in_single && (j == 0 || chars[j - 1] != '\\') => in_double = !in_double,
                _ => {}
            }
            if c == '$' && chars.get(j + 1) == Some(&'$') {
                out.push('$');
                line_subs.push(Substitution {
                    orig_start: col,
                    orig_len: 2,
                    new_start: new_col,
                    new_len: 1,
                });
                new_col += 1;
                j += 2;
                continue;
            }
            if c == '$' && chars.get(j + 1) == Some(&'{') {
                let Some(close) = chars[j + 2..].iter().position(|&c| c == '}') else {
                    errors.push((
                        lineno,
                        col,
                        "unclosed `${`: expected `${VAR}` or `${VAR:-default}`".to_string(),
                    ));
                    break;
                };
                let inner: String = chars[j + 2..j + 2 + close].iter().collect();
                if let Some(path) = inner.strip_prefix("file:") {
                    // A secret in a file (`${file:/run/secrets/x}`): Docker and systemd
                    // credentials, Kubernetes secret volumes.
                    let orig_len = close + 3;
                    j += orig_len;
                    match read_secret_file(path) {
                        Ok(value) => {
                            let new_len = value.chars().count();
                            out.push_str(&value);
                            line_subs.push(Substitution {
                                orig_start: col,
                                orig_len,
                                new_start: new_col,
                                new_len,
                            });
                            new_col += new_len;
                        }
                        Err(message) => errors.push((lineno, col, message)),
                    }
                    continue;
                }
                let (name, default) = match inner.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (inner.as_str(), None),
                };
                let valid_name = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                let orig_len = close + 3;
                j += orig_len;
                if !valid_name {
                    errors.push((
                        lineno,
                        col,
                        format!("`${{{inner}}}`: `{name}` is not a variable name"),
                    ));
                    continue;
                }
                let value = match (
                    env(name).filter(|v| !v.is_empty() || default.is_none()),
                    default,
                ) {
                    (Some(v), _) => v,
                    (None, Some(d)) => d.to_string(),
                    (None, None) => {
                        errors.push((
                            lineno,
                            col,
                            format!("environment variable `{name}` is not set (write `${{{name}:-default}}` to give a default)"),
                        ));
                        continue;
                    }
                };
                if value.contains('\n') || value.contains('\r') {
                    errors.push((lineno, col, format!("environment variable `{name}` contains a line break, which routes.yaml values cannot")));
                    continue;
                }
                let new_len = value.chars().count();
                line_subs.push(Substitution {
                    orig_start: col,
                    orig_len,
                    new_start: new_col,
                    new_len,
                });
                out.push_str(&value);
                new_col += new_len;
                continue;
            }
            out.push(c);
            new_col += 1;
            j += 1;
        }
        subs.push(line_subs);
    }
    if errors.is_empty() {
        Ok(Interpolated { text: out, subs })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cr3t".into()),
            "EMPTY" => Some(String::new()),
            "PORT" => Some("9999".into()),
            _ => None,
        }
    }

    fn load(text: &str) -> Result<LoadedConfig, ConfigErrors> {
        load_str("routes.yaml", text, &env)
    }

    fn errors(text: &str) -> Vec<String> {
        load(text)
            .expect_err("should be refused")
            .iter()
            .map(|e| e.to_string())
            .collect()
    }

    /// Regression (hardening item 9): only the first unknown key was reported, with no
    /// "did you mean".
    #[test]
    fn every_unknown_key_and_kind_is_reported_with_a_suggestion() {
        let errs = errors(
            "version: 1\nserver:\n  lisen: 127.0.0.1:0\n  extra:\n    deep: 1\nsources:\n  - name: a\n    kind: generic\n    lables: { x: y }\nendpoints:\n  - name: e\n    kind: webhok\n    url: http://x\n    timout: 5s\nroutes: []\n",
        );
        assert_eq!(errs.len(), 5, "{errs:#?}");
        assert!(
            errs[0].starts_with("routes.yaml:3:3:") && errs[0].contains("did you mean `listen`?"),
            "{errs:#?}"
        );
        assert!(
            errs[1].starts_with("routes.yaml:4:3:") && errs[1].contains("unknown field `extra`"),
            "{errs:#?}"
        );
        assert!(!errs[1].contains("did you mean"), "{errs:#?}");
        assert!(
            errs[2].starts_with("routes.yaml:9:5:") && errs[2].contains("did you mean `labels`?"),
            "{errs:#?}"
        );
        assert!(
            errs[3].starts_with("routes.yaml:12:11:")
                && errs[3].contains("did you mean `webhook`?"),
            "{errs:#?}"
        );
        assert!(
            errs[4].starts_with("routes.yaml:14:5:") && errs[4].contains("did you mean `timeout`?"),
            "{errs:#?}"
        );
    }

    #[test]
    fn interpolates_variables_and_defaults() {
        let cfg = load(
            "version: 1\nserver:\n  listen: 127.0.0.1:${PORT}\n  admin_token: ${EMPTY:-fallback}\nsources:\n  - name: a\n    kind: generic\n    auth: { bearer: \"${TOKEN}\" }\n    labels: { cost: \"$$5\", other: ${UNSET:-x} }\n",
        )
        .unwrap();
        assert_eq!(cfg.raw.server.listen, "127.0.0.1:9999");
        assert_eq!(
            cfg.raw.server.admin_token.as_ref().unwrap().expose(),
            "fallback"
        );
        assert_eq!(cfg.raw.sources[0].labels["cost"], "$5");
        assert_eq!(cfg.raw.sources[0].labels["other"], "x");
    }

    #[test]
    fn missing_variable_names_it_and_its_place() {
        let errs = errors("version: 1\nserver:\n  admin_token: ${NOPE}\n");
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with("routes.yaml:3:16: environment variable `NOPE` is not set"),
            "{errs:?}"
        );
    }

    #[test]
    fn secrets_come_from_files() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret-from-file\n").unwrap();
        let cfg = load(&format!(
            "version: 1\nserver:\n  admin_token: ${{file:{}}}\n",
            token.display()
        ))
        .unwrap();
        assert_eq!(
            cfg.raw.server.admin_token.as_ref().unwrap().expose(),
            "s3cret-from-file"
        );
        let two = dir.path().join("two");
        std::fs::write(&two, "a\nb\n").unwrap();
        let errs = errors(&format!(
            "version: 1\nserver:\n  admin_token: ${{file:{}}}\n",
            two.display()
        ));
        assert!(
            errs[0].starts_with("routes.yaml:3:16:") && errs[0].contains("more than one line"),
            "{errs:?}"
        );
        let errs = errors("version: 1\nserver:\n  admin_token: ${file:/nonexistent/x}\n");
        assert!(errs[0].contains("cannot read the file"), "{errs:?}");
    }

    #[test]
    fn comments_are_not_interpolated() {
        assert!(load("# set ${NOPE} to change it\nversion: 1 # or ${ALSO_NOPE}\n").is_ok());
    }

    #[test]
    fn unknown_key_is_located() {
        let errs = errors("version: 1\nserver:\n  lisen: 127.0.0.1:1\n");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("routes.yaml:3:3: "), "{errs:?}");
        assert!(errs[0].contains("unknown field `lisen`"), "{errs:?}");
    }

    #[test]
    fn columns_after_a_substitution_point_into_the_file_as_written() {
        // `${PORT}` (7 chars) becomes `9999` (4): the bad value after it is reported at its
        // column in the file, not in the interpolated text.
        let errs = errors("version: 1\nserver: { listen: \"${PORT}\", max_body_bytes: nope }\n");
        assert!(errs[0].starts_with("routes.yaml:2:"), "{errs:?}");
        let col: usize = errs[0].split(':').nth(2).unwrap().parse().unwrap();
        assert!(
            col >= 46,
            "column {col} should be at `nope` or its entry in the file as written: {errs:?}"
        );
    }

    #[test]
    fn yaml_syntax_errors_name_their_place() {
        // A tab where indentation is expected, an unclosed flow sequence, a bad indentation.
        let errs = errors("version: 1\nserver:\n\tlisten: x\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("routes.yaml:3:1: "), "{errs:?}");
        assert!(
            errs[0].ends_with("(a tab: indent routes.yaml with spaces)"),
            "{errs:?}"
        );
        let errs = errors("version: 1\nroutes: [\n");
        assert_eq!(
            errs,
            vec!["routes.yaml:3:1: did not find expected node content, while parsing a flow node"]
        );
        let errs = errors("version: 1\nserver:\n  listen: a\n bad: 1\n");
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].starts_with("routes.yaml:4:"), "{errs:?}");
    }

    #[test]
    fn an_unclosed_interpolation_names_its_place() {
        let errs = errors("version: 1\nserver:\n  admin_token: x${TOKEN\n");
        assert_eq!(
            errs,
            vec!["routes.yaml:3:17: unclosed `${`: expected `${VAR}` or `${VAR:-default}`"]
        );
        // The rest of the file is still read: a second problem on a later line is reported.
        let errs = errors("version: 1\na: ${\nb: ${NOPE}\n");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].starts_with("routes.yaml:2:4: unclosed `${`"),
            "{errs:?}"
        );
        assert!(
            errs[1].starts_with("routes.yaml:3:4: environment variable `NOPE`"),
            "{errs:?}"
        );
    }

    #[test]
    fn an_unreadable_file_is_one_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        let errs = load_file(&missing).expect_err("refused");
        let text = errs.to_string();
        assert_eq!(errs.len(), 1);
        assert!(
            text.starts_with(&format!(
                "{}: cannot read the config file: ",
                missing.display()
            )),
            "{text}"
        );
        // A directory, and a file that is not UTF-8.
        assert!(load_file(dir.path())
            .unwrap_err()
            .to_string()
            .contains("cannot read the config file"));
        let binary = dir.path().join("bin.yaml");
        std::fs::write(&binary, b"version: 1\n\xff\xfe\n").unwrap();
        let text = load_file(&binary).unwrap_err().to_string();
        assert!(text.contains("cannot read the config file"), "{text}");
        assert!(text.contains("UTF-8"), "{text}");
    }

    #[test]
    fn node_positions_follow_paths() {
        let text =
            "version: 1\nroutes:\n  - name: a\n    to: [x, y]\n  - matchers:\n      - 'a=\"b\"'\n";
        let pos = node_positions(text);
        let k = |s: &str| PathSeg::Key(s.into());
        assert_eq!(
            pos[&vec![k("routes"), PathSeg::Index(0), k("to"), PathSeg::Index(1)]],
            (4, 13)
        );
        assert_eq!(
            pos[&vec![
                k("routes"),
                PathSeg::Index(1),
                k("matchers"),
                PathSeg::Index(0)
            ]],
            (6, 9)
        );
        assert_eq!(pos[&vec![k("version")]], (1, 10));
    }
}
