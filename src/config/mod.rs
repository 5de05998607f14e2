//! routes.yaml: the schema (`types`), loading with `${VAR}` interpolation and `file:line:col`
//! locations (`load`), the checks that need the whole file (`validate`), and the duration and
//! rate syntax (`duration`).

pub mod duration;
pub mod endpoint_options;
pub mod intervals;
pub mod load;
pub mod matcher;
pub mod source_options;
pub mod storm_checks;
pub mod storms;
pub mod types;
pub mod unknown_keys;
pub mod validate;

use std::fmt;

/// One problem in a config file, at its place: printed as `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based line; 0 when the problem has no place in the file (it cannot be read).
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.col, self.message
            )
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in a config file, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    pub fn push(&mut self, e: ConfigError) {
        self.0.push(e);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }
    /// Sorts by place in the file, so errors print top to bottom.
    pub fn sort(&mut self) {
        self.0.sort_by_key(|e| (e.line, e.col));
    }
}

impl Extend<ConfigError> for ConfigErrors {
    fn extend<T: IntoIterator<Item = ConfigError>>(&mut self, iter: T) {
        self.0.extend(iter);
    }
}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        ConfigErrors(vec![e])
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
