//! Diagnostics: one message at one place, rendered as
//! `file:line:col: error: message`, the source line, and a caret.

use crate::source::{SourceMap, Span};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// Where it happened; `None` for errors with no place in a script.
    pub span: Option<Span>,
    /// Extra lines printed after the caret (`note: ...`).
    pub notes: Vec<String>,
    /// Notes about another place, printed as `note: TEXT at FILE:LINE:COL`
    /// before the plain notes (so that passes which move spans, like the
    /// stapxx expansion, move these too).
    pub places: Vec<(Span, String)>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span: Some(span),
            notes: Vec::new(),
            places: Vec::new(),
        }
    }

    pub fn warning(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(span, message)
        }
    }

    /// An error that belongs to no source position (a missing file, a bad flag).
    pub fn bare(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span: None,
            notes: Vec::new(),
            places: Vec::new(),
        }
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Diagnostic {
        self.notes.push(note.into());
        self
    }

    /// A note about another place (`note: TEXT at FILE:LINE:COL`).
    pub fn with_place(mut self, span: Span, text: impl Into<String>) -> Diagnostic {
        self.places.push((span, text.into()));
        self
    }

    /// The text shown to the user, ending in a newline.
    pub fn render(&self, sources: &SourceMap) -> String {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = String::new();
        match self.span {
            Some(span) => {
                let file = sources.get(span.file);
                let (line, col) = file.line_col(span.start);
                out.push_str(&format!(
                    "{}:{}:{}: {}: {}\n",
                    file.name, line, col, kind, self.message
                ));
                let text = file.line_text(line);
                out.push_str(&format!("    {}\n", text.replace('\t', " ")));
                out.push_str(&format!("    {}^\n", " ".repeat(col - 1)));
            }
            None => out.push_str(&format!("{}: {}\n", kind, self.message)),
        }
        for (span, text) in &self.places {
            let file = sources.get(span.file);
            let (line, col) = file.line_col(span.start);
            out.push_str(&format!("note: {text} at {}:{line}:{col}\n", file.name));
        }
        for note in &self.notes {
            out.push_str(&format!("note: {}\n", note));
        }
        out
    }
}
