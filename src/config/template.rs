//! Header value templates (`set_request_headers`), as Pomerium writes them: `$$` for a dollar
//! sign and `${pomerium.…}` references, compiled when the config loads.

use serde::Serialize;

/// One part of a compiled template.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Text(String),
    AccessToken,
    IdToken,
    /// The signed identity assertion sluice adds (`x-pomerium-jwt-assertion`).
    Jwt,
    ClientCertFingerprint,
    ClientCertSanDns,
    ClientCertSanEmail,
    /// `${pomerium.request.headers["name"]}`, name lowercased.
    RequestHeader(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Template(pub Vec<Part>);

impl Template {
    /// Whether rendering needs anything beyond literal text.
    pub fn is_literal(&self) -> bool {
        self.0.iter().all(|p| matches!(p, Part::Text(_)))
    }
}

/// Compiles a template. Unknown references render as nothing (as in Pomerium); they are
/// returned so validation can warn about them.
pub fn compile(text: &str) -> (Template, Vec<String>) {
    let mut parts = Vec::new();
    let mut unknown = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(next) = after.strip_prefix('$') {
            literal.push('$');
            rest = next;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            literal.push('$');
            rest = after;
            continue;
        };
        let Some(end) = body.find('}') else {
            literal.push_str(&rest[at..]);
            rest = "";
            break;
        };
        let reference = body[..end].trim();
        rest = &body[end + 1..];
        let part = match reference {
            "pomerium.access_token" => Some(Part::AccessToken),
            "pomerium.id_token" => Some(Part::IdToken),
            "pomerium.jwt" => Some(Part::Jwt),
            "pomerium.client_cert_fingerprint" => Some(Part::ClientCertFingerprint),
            "pomerium.client_cert_san_dns" => Some(Part::ClientCertSanDns),
            "pomerium.client_cert_san_email" => Some(Part::ClientCertSanEmail),
            other => other
                .strip_prefix("pomerium.request.headers[")
                .and_then(|h| h.strip_suffix(']'))
                .map(|h| h.trim().trim_matches('"').to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .map(Part::RequestHeader),
        };
        match part {
            Some(p) => {
                if !literal.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut literal)));
                }
                parts.push(p);
            }
            None => unknown.push(reference.to_string()),
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        parts.push(Part::Text(literal));
    }
    (Template(parts), unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_pomerium_references() {
        let (t, unknown) = compile("Bearer ${pomerium.id_token}");
        assert_eq!(t.0, vec![Part::Text("Bearer ".into()), Part::IdToken]);
        assert!(unknown.is_empty());
        let (t, _) = compile("${pomerium.request.headers[\"X-User\"]}-$$-x");
        assert_eq!(
            t.0,
            vec![
                Part::RequestHeader("x-user".into()),
                Part::Text("-$-x".into())
            ]
        );
        let (t, unknown) = compile("a${pomerium.nope}b");
        assert_eq!(t.0, vec![Part::Text("ab".into())]);
        assert_eq!(unknown, ["pomerium.nope"]);
        assert!(compile("plain $5 and ${unclosed").0.is_literal());
    }
}
