//! Evaluating a compiled policy against one request, with Pomerium's semantics: criteria give
//! a result and a reason, operators combine them, deny beats allow, and a criterion that needs
//! a signed-in user asks for sign-in when there is none.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde_json::Value;

use super::ast::{
    Action, CertificateMatcher, Criterion, ListMatcher, ListOp, Policy, Rule, StringMatcher,
    StringOp,
};
use crate::request_headers::RequestHeaders;

/// Who is asking, as far as sluice could establish.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Identity {
    /// The IdP subject (`sub`).
    pub user_id: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    /// Every claim, for `claim/<name>`.
    pub claims: serde_json::Map<String, Value>,
}

/// The client certificate Envoy reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum ClientCertificate {
    #[default]
    None,
    /// Presented but not usable (unparsable or not valid).
    Invalid,
    Valid(CertificateInfo),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct CertificateInfo {
    /// SHA-256 of the DER certificate, lowercase hex.
    pub fingerprint: String,
    /// Base64 SHA-256 of the SubjectPublicKeyInfo.
    pub spki_hash: String,
    pub san_email: Vec<String>,
    pub san_dns: Vec<String>,
    pub san_uri: Vec<String>,
}

/// What the policy sees of a request.
#[derive(Clone, Debug, Default)]
pub struct Input<'a> {
    pub identity: Option<&'a Identity>,
    pub method: &'a str,
    /// The URL path, without the query.
    pub path: &'a str,
    /// Request headers by lowercase name (as Envoy sends them).
    pub headers: RequestHeaders<'a>,
    pub source_ip: Option<IpAddr>,
    pub client_certificate: ClientCertificate,
}

impl<'a> Input<'a> {
    fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name)
    }
}

/// Pomerium's reason strings, shown on deny pages and in `sluice check`.
pub mod reason {
    pub const ACCEPT: &str = "accept";
    pub const REJECT: &str = "reject";
    pub const USER_UNAUTHENTICATED: &str = "user-unauthenticated";
    pub const CLIENT_CERTIFICATE_REQUIRED: &str = "client-certificate-required";
    pub const INVALID_CLIENT_CERTIFICATE: &str = "invalid-client-certificate";
    pub const VALID_CLIENT_CERTIFICATE: &str = "valid-client-certificate";
    pub const CORS_REQUEST: &str = "cors-request";
    pub const NON_CORS_REQUEST: &str = "non-cors-request";
}

type Reasons = BTreeSet<&'static str>;

/// A criterion's result and why.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Outcome {
    value: bool,
    reasons: Reasons,
}

impl Outcome {
    fn new(value: bool, reason: &'static str) -> Self {
        Outcome {
            value,
            reasons: BTreeSet::from([reason]),
        }
    }

    /// OR over results: true results give the reasons if any is true, else every false one.
    fn any(results: impl IntoIterator<Item = Outcome>) -> Outcome {
        let (mut yes, mut no) = (Reasons::new(), Reasons::new());
        let mut value = false;
        for r in results {
            if r.value {
                value = true;
                yes.extend(r.reasons);
            } else {
                no.extend(r.reasons);
            }
        }
        Outcome {
            value,
            reasons: if value { yes } else { no },
        }
    }

    fn negate(self) -> Outcome {
        Outcome {
            value: !self.value,
            reasons: self.reasons,
        }
    }
}

/// How a criterion was decided, for explanations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    pub action: Action,
    pub criterion: String,
    pub value: bool,
    pub reason: Vec<&'static str>,
}

/// The combined result of every allow and deny rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluation {
    pub allow: bool,
    pub deny: bool,
    pub allow_reasons: Vec<&'static str>,
    pub deny_reasons: Vec<&'static str>,
    pub trace: Vec<Trace>,
}

/// Pomerium's decision order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow {
        reasons: Vec<&'static str>,
    },
    /// 495: a client certificate is required or invalid.
    ClientCertificate {
        reasons: Vec<&'static str>,
    },
    /// Nobody is signed in and a criterion needs someone.
    SignIn,
    Deny {
        reasons: Vec<&'static str>,
    },
}

impl Evaluation {
    pub fn verdict(&self) -> Verdict {
        use reason::*;
        let has = |rs: &[&str], r: &str| rs.contains(&r);
        // As Pomerium: a certificate problem among the deny reasons ends it, before sign-in.
        if has(&self.deny_reasons, CLIENT_CERTIFICATE_REQUIRED)
            || has(&self.deny_reasons, INVALID_CLIENT_CERTIFICATE)
        {
            return Verdict::ClientCertificate {
                reasons: self.deny_reasons.clone(),
            };
        }
        if has(&self.allow_reasons, USER_UNAUTHENTICATED)
            || has(&self.deny_reasons, USER_UNAUTHENTICATED)
        {
            return Verdict::SignIn;
        }
        if self.deny {
            return Verdict::Deny {
                reasons: self.deny_reasons.clone(),
            };
        }
        if self.allow {
            return Verdict::Allow {
                reasons: self.allow_reasons.clone(),
            };
        }
        // Denied by the allow reasons: a missing or invalid certificate among them is 495 too.
        if has(&self.allow_reasons, CLIENT_CERTIFICATE_REQUIRED)
            || has(&self.allow_reasons, INVALID_CLIENT_CERTIFICATE)
        {
            return Verdict::ClientCertificate {
                reasons: self.allow_reasons.clone(),
            };
        }
        Verdict::Deny {
            reasons: self.allow_reasons.clone(),
        }
    }
}

/// Decides `policy` for `input`: what ext_authz calls, so it records no trace.
pub fn evaluate(policy: &Policy, input: &Input<'_>) -> Evaluation {
    evaluate_into(policy, input, None)
}

/// `evaluate`, with every criterion's result in `trace` (for `sluice check`). The hot path
/// skips this: describing each criterion allocates a string per criterion per request.
pub fn evaluate_traced(policy: &Policy, input: &Input<'_>) -> Evaluation {
    let mut trace = Vec::new();
    let mut evaluation = evaluate_into(policy, input, Some(&mut trace));
    evaluation.trace = trace;
    evaluation
}

fn evaluate_into(
    policy: &Policy,
    input: &Input<'_>,
    mut trace: Option<&mut Vec<Trace>>,
) -> Evaluation {
    let mut combine = |action: Action| {
        let results: Vec<Outcome> = policy
            .rules
            .iter()
            .filter(|r| r.action == action)
            .flat_map(|r| rule(r, input, trace.as_deref_mut()))
            .collect();
        Outcome::any(results)
    };
    let allow = combine(Action::Allow);
    let deny = combine(Action::Deny);
    Evaluation {
        allow: allow.value,
        deny: deny.value,
        allow_reasons: allow.reasons.into_iter().collect(),
        deny_reasons: deny.reasons.into_iter().collect(),
        trace: Vec::new(),
    }
}

/// Each non-empty operator of a rule is one result; the rule's action ORs them.
fn rule(rule: &Rule, input: &Input<'_>, mut trace: Option<&mut Vec<Trace>>) -> Vec<Outcome> {
    let mut eval = |c: &Criterion| {
        let o = criterion(c, input);
        if let Some(trace) = trace.as_deref_mut() {
            trace.push(Trace {
                action: rule.action,
                criterion: describe(c),
                value: o.value,
                reason: o.reasons.iter().copied().collect(),
            });
        }
        o
    };
    let mut out = Vec::new();
    if !rule.and.is_empty() {
        let results: Vec<Outcome> = rule.and.iter().map(&mut eval).collect();
        let value = results.iter().all(|r| r.value);
        // All true: every reason; otherwise the reasons of the false ones.
        let reasons = results
            .iter()
            .filter(|r| r.value == value || value)
            .flat_map(|r| r.reasons.iter().copied())
            .collect();
        out.push(Outcome { value, reasons });
    }
    if !rule.or.is_empty() {
        out.push(Outcome::any(
            rule.or.iter().map(&mut eval).collect::<Vec<_>>(),
        ));
    }
    if !rule.not.is_empty() {
        // NOR: true when every criterion is false.
        let results: Vec<Outcome> = rule.not.iter().map(&mut eval).collect();
        out.push(Outcome::any(results).negate());
    }
    if !rule.nor.is_empty() {
        // NAND: true when at least one criterion is false.
        let results: Vec<Outcome> = rule
            .nor
            .iter()
            .map(&mut eval)
            .map(Outcome::negate)
            .collect();
        out.push(Outcome::any(results));
    }
    out
}

fn describe(c: &Criterion) -> String {
    match c {
        Criterion::Accept => "accept".into(),
        Criterion::Reject => "reject".into(),
        Criterion::AuthenticatedUser => "authenticated_user".into(),
        Criterion::User(_) => "user".into(),
        Criterion::Email(_) => "email".into(),
        Criterion::Domain(_) => "domain".into(),
        Criterion::Claim { name, .. } => format!("claim/{name}"),
        Criterion::Groups(_) => "groups".into(),
        Criterion::HttpMethod(_) => "http_method".into(),
        Criterion::HttpPath(_) => "http_path".into(),
        Criterion::SourceIp(_) => "source_ip".into(),
        Criterion::CorsPreflight => "cors_preflight".into(),
        Criterion::ClientCertificate(_) => "client_certificate".into(),
        Criterion::InvalidClientCertificate => "invalid_client_certificate".into(),
    }
}

fn criterion(c: &Criterion, input: &Input<'_>) -> Outcome {
    use reason::*;
    if c.needs_session() && input.identity.is_none() {
        return Outcome::new(false, USER_UNAUTHENTICATED);
    }
    let ok =
        |v: bool, yes: &'static str, no: &'static str| Outcome::new(v, if v { yes } else { no });
    match c {
        Criterion::Accept => Outcome::new(true, ACCEPT),
        Criterion::Reject => Outcome::new(false, REJECT),
        Criterion::AuthenticatedUser => {
            let signed_in = input.identity.is_some_and(|i| !i.user_id.is_empty());
            ok(signed_in, "user-ok", USER_UNAUTHENTICATED)
        }
        Criterion::User(m) => ok(
            strings(m, input.identity.map(|i| i.user_id.as_str())),
            "user-ok",
            "user-unauthorized",
        ),
        // As Pomerium: a user without an email has the email "".
        Criterion::Email(m) => ok(
            strings(
                m,
                Some(
                    input
                        .identity
                        .and_then(|i| i.email.as_deref())
                        .unwrap_or(""),
                ),
            ),
            "email-ok",
            "email-unauthorized",
        ),
        Criterion::Domain(m) => {
            // As Pomerium (`split(email, "@")[1]`): the part after the first `@`; an email
            // without one has no domain, and then no matcher holds, not even `not`.
            let domain = input
                .identity
                .and_then(|i| i.email.as_deref())
                .and_then(|e| e.split('@').nth(1));
            ok(
                domain.is_some_and(|d| strings(m, Some(d))),
                "domain-ok",
                "domain-unauthorized",
            )
        }
        Criterion::Claim { name, matcher } => {
            let values = input
                .identity
                .map(|i| claim_values(&i.claims, name))
                .unwrap_or_default();
            ok(list(matcher, &values), "claim-ok", "claim-unauthorized")
        }
        Criterion::Groups(m) => {
            let values: Vec<Value> = input
                .identity
                .map(|i| i.groups.iter().map(|g| Value::String(g.clone())).collect())
                .unwrap_or_default();
            ok(list(m, &values), "groups-ok", "groups-unauthorized")
        }
        Criterion::HttpMethod(m) => ok(
            strings(m, Some(input.method)),
            "http-method-ok",
            "http-method-unauthorized",
        ),
        Criterion::HttpPath(m) => ok(
            strings(m, Some(input.path)),
            "http-path-ok",
            "http-path-unauthorized",
        ),
        Criterion::SourceIp(nets) => {
            let v = input
                .source_ip
                .is_some_and(|ip| nets.iter().any(|n| n.contains(ip)));
            ok(v, "source-ip-ok", "source-ip-unauthorized")
        }
        Criterion::CorsPreflight => {
            // Methods are case-sensitive (RFC 9110); Pomerium compares with "OPTIONS".
            let v = input.method == "OPTIONS"
                && input.header("access-control-request-method").is_some()
                && input.header("origin").is_some();
            ok(v, CORS_REQUEST, NON_CORS_REQUEST)
        }
        Criterion::ClientCertificate(m) => match &input.client_certificate {
            ClientCertificate::Valid(info) => ok(
                certificate(m, info),
                "client-certificate-ok",
                "client-certificate-unauthorized",
            ),
            // As Pomerium: no certificate simply does not match (403); an invalid one is 495.
            ClientCertificate::None => Outcome::new(false, "client-certificate-unauthorized"),
            ClientCertificate::Invalid => Outcome::new(false, INVALID_CLIENT_CERTIFICATE),
        },
        Criterion::InvalidClientCertificate => match &input.client_certificate {
            ClientCertificate::None => Outcome::new(true, CLIENT_CERTIFICATE_REQUIRED),
            ClientCertificate::Invalid => Outcome::new(true, INVALID_CLIENT_CERTIFICATE),
            ClientCertificate::Valid(_) => Outcome::new(false, VALID_CLIENT_CERTIFICATE),
        },
    }
}

/// Every operator must hold; a missing value matches nothing but `not` and `not_in`.
fn strings(m: &StringMatcher, value: Option<&str>) -> bool {
    m.0.iter().all(|op| match (op, value) {
        (StringOp::Is(x), Some(v)) => v == x,
        (StringOp::Not(x), v) => v != Some(x.as_str()),
        (StringOp::Contains(x), Some(v)) => v.contains(x.as_str()),
        (StringOp::StartsWith(x), Some(v)) => v.starts_with(x.as_str()),
        (StringOp::EndsWith(x), Some(v)) => v.ends_with(x.as_str()),
        (StringOp::In(xs), Some(v)) => xs.iter().any(|x| x == v),
        (StringOp::NotIn(xs), v) => !v.is_some_and(|v| xs.iter().any(|x| x == v)),
        (_, None) => false,
    })
}

/// A claim's values as a list: arrays give their elements, anything else itself.
fn claim_values(claims: &serde_json::Map<String, Value>, name: &str) -> Vec<Value> {
    let found = claims.get(name).or_else(|| {
        // Nested: `org/team` or `org.team`.
        let mut parts = name.split(['/', '.']);
        let mut current = claims.get(parts.next()?)?;
        for part in parts {
            current = current.as_object()?.get(part)?;
        }
        Some(current)
    });
    match found {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Null) | None => Vec::new(),
        Some(v) => vec![v.clone()],
    }
}

/// Claims compare as Pomerium's Rego `==` does: by JSON type and value, so `21` does not
/// match `"21"`; numbers compare by value (`21` matches `21.0`).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn list(m: &ListMatcher, values: &[Value]) -> bool {
    m.0.iter().all(|op| match op {
        ListOp::Has(v) => values.iter().any(|x| same(x, v)),
        ListOp::Is(v) => values.len() == 1 && same(&values[0], v),
        ListOp::Exclude(v) => !values.iter().any(|x| same(x, v)),
    })
}

fn certificate(m: &CertificateMatcher, info: &CertificateInfo) -> bool {
    let any_string = |matcher: &Option<StringMatcher>, values: &[String]| match matcher {
        None => true,
        Some(s) => values.iter().any(|v| strings(s, Some(v))),
    };
    (m.fingerprint.is_empty() || m.fingerprint.contains(&info.fingerprint))
        && (m.spki_hash.is_empty() || m.spki_hash.contains(&info.spki_hash))
        && any_string(&m.san_email, &info.san_email)
        && any_string(&m.san_dns, &info.san_dns)
        && any_string(&m.san_uri, &info.san_uri)
}
