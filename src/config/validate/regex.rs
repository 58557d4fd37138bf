//! Regular expressions as Envoy's engine (RE2) takes them, so `validate` refuses what Envoy would.

use regex_syntax::ast::{Ast, RepetitionKind, RepetitionRange};

/// RE2's largest repetition count: `a{1001}` is "invalid repetition size" to Envoy, although
/// Rust's regex crate accepts it.
const MAX_REPEAT: u32 = 1000;

/// Whether Envoy will compile `pattern`; the error is the parser's (possibly several lines).
pub fn check(pattern: &str) -> Result<(), String> {
    regex::Regex::new(pattern).map_err(|e| e.to_string())?;
    let ast = regex_syntax::ast::parse::Parser::new()
        .parse(pattern)
        .map_err(|e| e.to_string())?;
    match largest_repeat(&ast) {
        Some(n) if n > MAX_REPEAT => Err(format!(
            "a repetition count of {n} is more than Envoy's regex engine (RE2) allows ({MAX_REPEAT})"
        )),
        _ => Ok(()),
    }
}

fn largest_repeat(ast: &Ast) -> Option<u32> {
    match ast {
        Ast::Repetition(r) => {
            let here = match r.op.kind {
                RepetitionKind::Range(RepetitionRange::Exactly(n))
                | RepetitionKind::Range(RepetitionRange::AtLeast(n)) => Some(n),
                RepetitionKind::Range(RepetitionRange::Bounded(m, n)) => Some(m.max(n)),
                _ => None,
            };
            here.max(largest_repeat(&r.ast))
        }
        Ast::Group(g) => largest_repeat(&g.ast),
        Ast::Alternation(a) => a.asts.iter().filter_map(largest_repeat).max(),
        Ast::Concat(c) => c.asts.iter().filter_map(largest_repeat).max(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_limits_are_kept() {
        assert!(check("^/a{1000}$").is_ok());
        assert!(check("^/api/(v1|v2)/[a-z]+$").is_ok());
        let err = check("^/(x(a{2,1001}))$").unwrap_err();
        assert!(err.contains("1001"), "{err}");
        assert!(check("^/a{1001,}$").is_err());
        assert!(check("(unclosed").is_err());
    }
}
