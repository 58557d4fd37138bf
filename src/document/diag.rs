//! Diagnostics: every config problem with file, line, column, key path and a full sentence.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A position in the config file (1-based line and column). Kept small: every YAML node
/// carries one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub line: u32,
    pub col: u32,
}

impl Span {
    pub fn new(line: usize, col: usize) -> Self {
        let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self {
            line: clamp(line),
            col: clamp(col),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found in a config file. `path` is the key path (`routes[3].to[1]`),
/// empty for problems with the file as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    pub span: Span,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: ",
            self.file.display(),
            self.span.line,
            self.span.col,
            self.severity
        )?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Collects diagnostics for one file. Validation keeps going after an error so that
/// the user sees every problem in one run.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    file: Arc<Path>,
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(file: &Path) -> Self {
        Self {
            file: Arc::from(file),
            items: Vec::new(),
        }
    }

    /// A collector for the same file (for work done on another thread).
    pub fn sibling(&self) -> Self {
        Self {
            file: Arc::clone(&self.file),
            items: Vec::new(),
        }
    }

    /// Takes over another collector's diagnostics.
    pub fn absorb(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn error(&mut self, span: Span, path: impl fmt::Display, message: impl Into<String>) {
        self.push(Severity::Error, span, path, message);
    }

    pub fn warning(&mut self, span: Span, path: impl fmt::Display, message: impl Into<String>) {
        self.push(Severity::Warning, span, path, message);
    }

    fn push(
        &mut self,
        severity: Severity,
        span: Span,
        path: impl fmt::Display,
        message: impl Into<String>,
    ) {
        self.items.push(Diagnostic {
            severity,
            file: self.file.to_path_buf(),
            span,
            path: path.to_string(),
            message: message.into(),
        });
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// Whether an error was already reported at this key path (to avoid reporting its
    /// consequences as separate problems).
    pub fn has_error_at(&self, path: &str) -> bool {
        self.items
            .iter()
            .any(|d| d.severity == Severity::Error && d.path == path)
    }

    pub fn error_count(&self) -> usize {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// Diagnostics in file order, errors before warnings on the same spot.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by_key(|d| (d.span, d.severity));
        self.items
    }
}

/// A config that failed validation: every diagnostic, warnings included.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} error(s) in {}", .errors, .file.display())]
pub struct Rejected {
    pub file: PathBuf,
    pub errors: usize,
    pub diagnostics: Vec<Diagnostic>,
}
