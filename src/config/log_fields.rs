//! `log_format` and Pomerium's `authorize_log_fields`: how logs are written and which fields
//! the one-line-per-decision ext_authz log carries.

use serde::Serialize;

use crate::document::decode::{KeyPath, Spanned, StringList};
use crate::document::diag::Diagnostics;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One JSON object per line, fields at the top level (as Pomerium logs).
    Json,
    /// Human-readable lines for a terminal.
    Pretty,
}

/// One field Pomerium's authorize log can carry (`authorize_log_fields`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthorizeLogField {
    Body,
    CheckRequestId,
    ClusterStatName,
    Email,
    EnvoyRouteChecksum,
    EnvoyRouteId,
    Headers,
    Host,
    IdToken,
    IdTokenClaims,
    ImpersonateEmail,
    ImpersonateSessionId,
    ImpersonateUserId,
    Ip,
    McpMethod,
    McpTool,
    McpToolParameters,
    Method,
    Path,
    Query,
    RemovedGroupsCount,
    RequestId,
    RouteChecksum,
    RouteId,
    ServiceAccountId,
    SessionId,
    User,
}

use AuthorizeLogField as F;

/// Every field by Pomerium's name (`pkg/logfields/authorize.go`).
const NAMES: [(&str, AuthorizeLogField); 27] = [
    ("body", F::Body),
    ("check-request-id", F::CheckRequestId),
    ("cluster-stat-name", F::ClusterStatName),
    ("email", F::Email),
    ("envoy-route-checksum", F::EnvoyRouteChecksum),
    ("envoy-route-id", F::EnvoyRouteId),
    ("headers", F::Headers),
    ("host", F::Host),
    ("id-token", F::IdToken),
    ("id-token-claims", F::IdTokenClaims),
    ("impersonate-email", F::ImpersonateEmail),
    ("impersonate-session-id", F::ImpersonateSessionId),
    ("impersonate-user-id", F::ImpersonateUserId),
    ("ip", F::Ip),
    ("mcp-method", F::McpMethod),
    ("mcp-tool", F::McpTool),
    ("mcp-tool-parameters", F::McpToolParameters),
    ("method", F::Method),
    ("path", F::Path),
    ("query", F::Query),
    ("removed-groups-count", F::RemovedGroupsCount),
    ("request-id", F::RequestId),
    ("route-checksum", F::RouteChecksum),
    ("route-id", F::RouteId),
    ("service-account-id", F::ServiceAccountId),
    ("session-id", F::SessionId),
    ("user", F::User),
];

/// Pomerium's defaults, in its order.
const DEFAULTS: [AuthorizeLogField; 18] = [
    F::RequestId,
    F::CheckRequestId,
    F::Method,
    F::Path,
    F::Host,
    F::Ip,
    F::SessionId,
    F::ImpersonateSessionId,
    F::ImpersonateUserId,
    F::ImpersonateEmail,
    F::RemovedGroupsCount,
    F::ServiceAccountId,
    F::User,
    F::Email,
    F::EnvoyRouteChecksum,
    F::EnvoyRouteId,
    F::RouteChecksum,
    F::RouteId,
];

/// Headers never logged, whatever `authorize_log_fields` says: they carry credentials.
pub const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "cookie",
    "proxy-authorization",
    "x-pomerium-authorization",
    "x-pomerium-jwt-assertion",
];

/// The chosen fields: a bit set (cheap to test per request) plus single headers
/// (`headers.<name>`, lowercase).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AuthorizeLogFields {
    bits: u32,
    pub headers: Vec<String>,
}

impl Default for AuthorizeLogFields {
    fn default() -> Self {
        let mut fields = AuthorizeLogFields {
            bits: 0,
            headers: Vec::new(),
        };
        for f in DEFAULTS {
            fields.bits |= 1 << f as u32;
        }
        fields
    }
}

impl AuthorizeLogFields {
    pub fn contains(&self, field: AuthorizeLogField) -> bool {
        self.bits & (1 << field as u32) != 0
    }

    /// The field names, for rendering the model.
    pub fn names(&self) -> Vec<String> {
        NAMES
            .iter()
            .filter(|(_, f)| self.contains(*f))
            .map(|(n, _)| n.to_string())
            .chain(self.headers.iter().map(|h| format!("headers.{h}")))
            .collect()
    }
}

impl Serialize for AuthorizeLogFields {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names().serialize(s)
    }
}

/// `log_format`: unset means "JSON unless logs go to a terminal", decided at startup.
pub fn log_format(raw: Option<&Spanned<String>>, diags: &mut Diagnostics) -> Option<LogFormat> {
    let f = raw?;
    match f.value.to_ascii_lowercase().as_str() {
        "json" => Some(LogFormat::Json),
        "pretty" | "console" | "text" => Some(LogFormat::Pretty),
        _ => {
            diags.error(
                f.span,
                "log_format",
                format!("`{}` is not a log format; use json or pretty", f.value),
            );
            None
        }
    }
}

/// `authorize_log_fields`: Pomerium's field names; unset means Pomerium's defaults. An
/// unknown name is an error (with the closest known one).
pub fn authorize_log_fields(
    raw: Option<&Spanned<StringList>>,
    diags: &mut Diagnostics,
) -> AuthorizeLogFields {
    let Some(list) = raw else {
        return AuthorizeLogFields::default();
    };
    let mut fields = AuthorizeLogFields {
        bits: 0,
        headers: Vec::new(),
    };
    let path = KeyPath::root().key("authorize_log_fields");
    for (i, name) in list.value.0.iter().enumerate() {
        let at = path.index(i);
        let lowered = name.value.to_ascii_lowercase();
        if let Some(header) = lowered.strip_prefix("headers.") {
            if header.is_empty() {
                diags.error(
                    name.span,
                    &at,
                    "`headers.` needs a header name after the dot, as in `headers.user-agent`",
                );
            } else if SECRET_HEADERS.contains(&header) {
                diags.error(
                    name.span,
                    &at,
                    format!("the `{header}` header carries credentials; sluice never logs it"),
                );
            } else if !fields.headers.iter().any(|h| h == header) {
                fields.headers.push(header.to_string());
            }
            continue;
        }
        match NAMES.iter().find(|(n, _)| *n == lowered) {
            Some((_, f)) => fields.bits |= 1 << *f as u32,
            None => {
                let message = match closest(&lowered) {
                    Some(close) => format!(
                        "`{}` is not an authorize log field; did you mean `{close}`?",
                        name.value
                    ),
                    None => format!(
                        "`{}` is not an authorize log field; known fields are {}, or `headers.<name>`",
                        name.value,
                        NAMES.map(|(n, _)| n).join(", ")
                    ),
                };
                diags.error(name.span, &at, message);
            }
        }
    }
    fields
}

/// The known field closest to a misspelt one, if close enough to be a likely typo.
fn closest(name: &str) -> Option<&'static str> {
    let name = name.replace('_', "-");
    NAMES
        .iter()
        .map(|(n, _)| (strsim::damerau_levenshtein(&name, n), *n))
        .filter(|(d, n)| *d <= (n.len() / 4).max(2))
        .min()
        .map(|(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::diag::Span;

    fn list(names: &[&str]) -> Spanned<StringList> {
        Spanned::new(
            StringList(
                names
                    .iter()
                    .map(|n| Spanned::new(n.to_string(), Span::new(3, 1)))
                    .collect(),
            ),
            Span::new(3, 1),
        )
    }

    #[test]
    fn defaults_are_pomeriums() {
        let d = AuthorizeLogFields::default();
        assert!(d.contains(F::RequestId) && d.contains(F::User) && d.contains(F::RouteId));
        assert!(!d.contains(F::Query) && !d.contains(F::IdToken) && !d.contains(F::Headers));
    }

    #[test]
    fn unknown_names_suggest_the_closest() {
        let mut diags = Diagnostics::new(std::path::Path::new("c.yaml"));
        let f = authorize_log_fields(
            Some(&list(&[
                "user",
                "emial",
                "headers.x-team",
                "headers.cookie",
                "zzzz",
            ])),
            &mut diags,
        );
        assert!(f.contains(F::User) && !f.contains(F::Method));
        assert_eq!(f.headers, ["x-team"]);
        assert_eq!(diags.error_count(), 3);
        let text: Vec<String> = diags
            .into_sorted()
            .iter()
            .map(ToString::to_string)
            .collect();
        let text = text.join("\n");
        assert!(text.contains("did you mean `email`?"), "{text}");
        assert!(text.contains("carries credentials"), "{text}");
        assert!(
            text.contains("`zzzz` is not an authorize log field"),
            "{text}"
        );
    }
}
