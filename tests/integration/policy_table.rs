//! The policy evaluator, case by case: each case is a route written as YAML, loaded through the
//! real config loader (so PPL parsing and the route shorthands are part of what is tested), and
//! evaluated against one request. Expectations are Pomerium's (`shared/reference/pomerium.md`
//! §4, and Pomerium's `pkg/policy/criteria` for the reason strings).

use std::net::IpAddr;
use std::path::Path;

use serde_json::{Map, Value};
use sluice::authz::tokens::identity_from;
use sluice::policy::Policy;
use sluice::policy::eval::{CertificateInfo, ClientCertificate, Input, Verdict, evaluate};
use sluice::request_headers::{HeaderEntry, RequestHeaders};

// ---------------------------------------------------------------------------------------------
// Who is asking.

const NOBODY: Option<&str> = None;

/// Rich claims: nested objects, a namespaced claim, numbers, booleans, null, an empty string.
const ALICE: Option<&str> = Some(
    r#"{
    "sub": "alice",
    "email": "alice@example.com",
    "groups": ["admins", "eng"],
    "department": "eng",
    "https://example.com/roles": ["editor", "viewer"],
    "org": {"team": {"name": "core"}, "level": 3},
    "realm_access": {"roles": ["ops"]},
    "age": 21,
    "admin": true,
    "ids": [1, 2, 3],
    "nickname": null,
    "empty": ""
}"#,
);
const BOB: Option<&str> = Some(r#"{"sub": "bob", "email": "bob@other.org", "groups": ["users"]}"#);
/// No `email` claim at all.
const CAROL: Option<&str> = Some(r#"{"sub": "carol"}"#);
/// An email without `@`.
const DAVE: Option<&str> = Some(r#"{"sub": "dave", "email": "dave"}"#);
/// An email claim that is the empty string.
const ERIN: Option<&str> = Some(r#"{"sub": "erin", "email": ""}"#);
/// Alice's address, capitalised differently.
const ALICE_UPPER: Option<&str> = Some(r#"{"sub": "Alice", "email": "Alice@Example.COM"}"#);

// ---------------------------------------------------------------------------------------------
// Client certificates.

const FINGERPRINT: &str = "77a922d64ebfc8fc401c491ddca5499702203862c33a8c6dc4b20de8f2d8b4cf";
const SPKI: &str = "DsZyz7GNBxWvUnfjjOGlOyaDHDDeTDzT7t8GwXdabXM=";

fn alice_cert() -> ClientCertificate {
    ClientCertificate::Valid(CertificateInfo {
        fingerprint: FINGERPRINT.to_string(),
        spki_hash: SPKI.to_string(),
        san_email: vec!["alice@example.com".into()],
        san_dns: vec!["a.internal".into(), "svc.internal".into()],
        san_uri: vec!["spiffe://example.org/ns/prod/sa/alice".into()],
    })
}

// ---------------------------------------------------------------------------------------------
// The table's shape.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Allow,
    SignIn,
    Deny,
    /// 495: a client certificate is required or invalid.
    Cert495,
}

struct Case {
    name: &'static str,
    /// `routes`, or the legacy top-level `policy`.
    list: &'static str,
    /// Route keys besides `from` and `to`, as YAML (dedented here, indented when written).
    route: &'static str,
    claims: Option<&'static str>,
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    source_ip: Option<&'static str>,
    cert: ClientCertificate,
    expect: Option<(Kind, Option<Vec<&'static str>>)>,
}

fn case(name: &'static str, route: &'static str, claims: Option<&'static str>) -> Case {
    Case {
        name,
        list: "routes",
        route,
        claims,
        method: "GET",
        path: "/",
        headers: Vec::new(),
        source_ip: None,
        cert: ClientCertificate::None,
        expect: None,
    }
}

impl Case {
    fn method(mut self, method: &'static str) -> Self {
        self.method = method;
        self
    }
    fn path(mut self, path: &'static str) -> Self {
        self.path = path;
        self
    }
    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }
    /// `OPTIONS` with both headers a CORS preflight carries.
    fn preflight(self) -> Self {
        self.method("OPTIONS")
            .header("origin", "https://app.example.com")
            .header("access-control-request-method", "POST")
    }
    fn ip(mut self, ip: &'static str) -> Self {
        self.source_ip = Some(ip);
        self
    }
    fn cert(mut self, cert: ClientCertificate) -> Self {
        self.cert = cert;
        self
    }
    fn legacy(mut self) -> Self {
        self.list = "policy";
        self
    }
    fn expect(mut self, kind: Kind, reasons: Option<&[&'static str]>) -> Self {
        self.expect = Some((kind, reasons.map(<[_]>::to_vec)));
        self
    }
    fn allow(self, reasons: &[&'static str]) -> Self {
        self.expect(Kind::Allow, Some(reasons))
    }
    fn deny(self, reasons: &[&'static str]) -> Self {
        self.expect(Kind::Deny, Some(reasons))
    }
    fn sign_in(self) -> Self {
        self.expect(Kind::SignIn, None)
    }
    fn cert495(self, reasons: &[&'static str]) -> Self {
        self.expect(Kind::Cert495, Some(reasons))
    }
}

// ---------------------------------------------------------------------------------------------
// Loading and evaluating.

/// Removes the blank first and last lines and the common indentation.
fn dedent(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.trim_matches('\n').lines().map(str::trim_end).collect();
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .into_iter()
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect()
}

fn config_text(list: &str, route: &str) -> String {
    let mut text = format!(
        "insecure_server: true\naddress: 127.0.0.1:8080\n{list}:\n  - from: http://t.example.com\n    to: http://127.0.0.1:9\n"
    );
    for line in dedent(route) {
        if !line.is_empty() {
            text.push_str("    ");
            text.push_str(line);
        }
        text.push('\n');
    }
    text
}

/// Writes the config and loads it the way `sluice validate` and `serve` do.
fn load_policy(dir: &Path, index: usize, case: &Case) -> Result<Policy, String> {
    let text = config_text(case.list, case.route);
    let path = dir.join(format!("case-{index:03}.yaml"));
    std::fs::write(&path, &text).map_err(|e| format!("write {}: {e}", path.display()))?;
    match sluice::config::load(&path) {
        Ok(mut model) if model.routes.len() == 1 => Ok((*model.routes.remove(0).policy).clone()),
        Ok(model) => Err(format!("expected 1 route, got {}", model.routes.len())),
        Err(rejected) => Err(format!(
            "the config was rejected:\n{}\n--- config ---\n{text}",
            rejected
                .diagnostics
                .iter()
                .map(|d| format!("      {d}"))
                .collect::<Vec<_>>()
                .join("\n")
        )),
    }
}

fn describe(kind: Kind, reasons: Option<&[&str]>) -> String {
    match reasons {
        Some(r) => format!("{kind:?} {r:?}"),
        None => format!("{kind:?}"),
    }
}

fn run(dir: &Path, index: usize, case: &Case) -> Result<(), String> {
    let Some((kind, reasons)) = &case.expect else {
        return Err("the case has no expectation".into());
    };
    let policy = load_policy(dir, index, case)?;
    let identity = match case.claims {
        None => None,
        Some(json) => {
            let claims: Map<String, Value> =
                serde_json::from_str(json).map_err(|e| format!("bad claims JSON: {e}"))?;
            Some(identity_from(claims).map_err(|e| format!("claims name no user: {e}"))?)
        }
    };
    let headers: Vec<HeaderEntry> = case
        .headers
        .iter()
        .map(|(k, v)| HeaderEntry::new(*k, *v))
        .collect();
    let source_ip = match case.source_ip {
        None => None,
        Some(ip) => Some(
            ip.parse::<IpAddr>()
                .map_err(|e| format!("bad source ip {ip}: {e}"))?,
        ),
    };
    let input = Input {
        identity: identity.as_ref(),
        method: case.method,
        path: case.path,
        headers: RequestHeaders(&headers),
        source_ip,
        client_certificate: case.cert.clone(),
    };
    let (got_kind, got_reasons) = match evaluate(&policy, &input).verdict() {
        Verdict::Allow { reasons } => (Kind::Allow, Some(reasons)),
        Verdict::SignIn => (Kind::SignIn, None),
        Verdict::Deny { reasons } => (Kind::Deny, Some(reasons)),
        Verdict::ClientCertificate { reasons } => (Kind::Cert495, Some(reasons)),
    };
    let mut got_reasons = got_reasons;
    if let Some(r) = got_reasons.as_mut() {
        r.sort_unstable();
    }
    let mut want = reasons.clone();
    if let Some(r) = want.as_mut() {
        r.sort_unstable();
    }
    let kind_ok = got_kind == *kind;
    let reasons_ok = want.is_none() || want == got_reasons;
    if kind_ok && reasons_ok {
        Ok(())
    } else {
        Err(format!(
            "expected {}, got {}",
            describe(*kind, want.as_deref()),
            describe(got_kind, got_reasons.as_deref())
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// The table.

/// Pomerium: `domain := split(get_user_email(...), "@")[1]` is undefined when the email has
/// no `@` (or is missing, which Pomerium reads as ""), so the criterion body fails and the
/// result is `[false, {domain-unauthorized}]` whatever the matcher; sluice treats the domain
/// as absent, and `not` / `not_in` then hold.
fn cases() -> Vec<Case> {
    vec![
        // --- accept / reject -------------------------------------------------------------
        case(
            "accept lets nobody in",
            "
            policy:
              allow:
                or:
                  - accept: true
            ",
            NOBODY,
        )
        .allow(&["accept"]),
        case(
            "reject refuses a signed-in user",
            "
            policy:
              allow:
                or:
                  - reject: true
            ",
            ALICE,
        )
        .deny(&["reject"]),
        case(
            "reject needs no session, so nobody gets 403, not sign-in",
            "policy: {allow: {or: [{reject: true}]}}",
            NOBODY,
        )
        .deny(&["reject"]),
        // --- authenticated_user ---------------------------------------------------------
        case(
            "authenticated_user: nobody signs in",
            "policy: {allow: {or: [{authenticated_user: true}]}}",
            NOBODY,
        )
        .sign_in(),
        case(
            "authenticated_user: anyone signed in",
            "policy: {allow: {or: [{authenticated_user: true}]}}",
            BOB,
        )
        .allow(&["user-ok"]),
        // --- user -----------------------------------------------------------------------
        case(
            "user: bare string is `is` on the subject",
            "
            policy:
              allow:
                and:
                  - user: alice
            ",
            ALICE,
        )
        .allow(&["user-ok"]),
        case(
            "user: another subject",
            "
            policy:
              allow:
                and:
                  - user: alice
            ",
            BOB,
        )
        .deny(&["user-unauthorized"]),
        case(
            "user: is case-sensitive",
            "policy: {allow: {and: [{user: alice}]}}",
            ALICE_UPPER,
        )
        .deny(&["user-unauthorized"]),
        case(
            "user: nobody signs in",
            "policy: {allow: {and: [{user: alice}]}}",
            NOBODY,
        )
        .sign_in(),
        // --- email ----------------------------------------------------------------------
        case(
            "email: exact match",
            "
            policy:
              allow:
                or:
                  - email:
                      is: alice@example.com
            ",
            ALICE,
        )
        .allow(&["email-ok"]),
        case(
            "email: another address",
            "policy: {allow: {or: [{email: {is: alice@example.com}}]}}",
            BOB,
        )
        .deny(&["email-unauthorized"]),
        case(
            "email: comparison is case-sensitive",
            "policy: {allow: {or: [{email: alice@example.com}]}}",
            ALICE_UPPER,
        )
        .deny(&["email-unauthorized"]),
        case(
            "email: missing email claim never matches `is`",
            "policy: {allow: {or: [{email: alice@example.com}]}}",
            CAROL,
        )
        .deny(&["email-unauthorized"]),
        case(
            "email: an empty email claim matches `is: \"\"`",
            "policy: {allow: {or: [{email: {is: ''}}]}}",
            ERIN,
        )
        .allow(&["email-ok"]),
        case(
            "email: a missing email is \"\" as in Pomerium",
            "policy: {allow: {or: [{email: {is: ''}}]}}",
            CAROL,
        )
        .allow(&["email-ok"]),
        case(
            "email: nobody signs in",
            "policy: {allow: {or: [{email: alice@example.com}]}}",
            NOBODY,
        )
        .sign_in(),
        // --- domain ---------------------------------------------------------------------
        case(
            "domain: the part after @",
            "
            policy:
              allow:
                or:
                  - domain: example.com
            ",
            ALICE,
        )
        .allow(&["domain-ok"]),
        case(
            "domain: another domain",
            "policy: {allow: {or: [{domain: example.com}]}}",
            BOB,
        )
        .deny(&["domain-unauthorized"]),
        case(
            "domain: case-sensitive",
            "policy: {allow: {or: [{domain: example.com}]}}",
            ALICE_UPPER,
        )
        .deny(&["domain-unauthorized"]),
        case(
            "domain: email without @ has no domain to match",
            "policy: {allow: {or: [{domain: {is: dave}}]}}",
            DAVE,
        )
        .deny(&["domain-unauthorized"]),
        case(
            "domain: `not` cannot match an email without @",
            "policy: {allow: {or: [{domain: {not: evil.com}}]}}",
            DAVE,
        )
        .deny(&["domain-unauthorized"]),
        case(
            "domain: `not_in` cannot match a missing email",
            "policy: {allow: {or: [{domain: {not_in: [evil.com]}}]}}",
            CAROL,
        )
        .deny(&["domain-unauthorized"]),
        case(
            "domain: nobody signs in",
            "policy: {allow: {or: [{domain: example.com}]}}",
            NOBODY,
        )
        .sign_in(),
        // --- string matchers ------------------------------------------------------------
        case(
            "string not: a different value",
            "policy: {allow: {or: [{email: {not: bob@other.org}}]}}",
            ALICE,
        )
        .allow(&["email-ok"]),
        case(
            "string not: the same value",
            "policy: {allow: {or: [{email: {not: bob@other.org}}]}}",
            BOB,
        )
        .deny(&["email-unauthorized"]),
        case(
            "string contains: substring",
            "
            policy:
              allow:
                or:
                  - http_path:
                      contains: /admin/
            ",
            NOBODY,
        )
        .path("/x/admin/y")
        .allow(&["http-path-ok"]),
        case(
            "string contains: absent",
            "policy: {allow: {or: [{http_path: {contains: /admin/}}]}}",
            NOBODY,
        )
        .path("/x/administrator")
        .deny(&["http-path-unauthorized"]),
        case(
            "string starts_with: prefix",
            "policy: {allow: {or: [{http_path: {starts_with: /api/}}]}}",
            NOBODY,
        )
        .path("/api/v1/items")
        .allow(&["http-path-ok"]),
        case(
            "string starts_with: not a prefix",
            "policy: {allow: {or: [{http_path: {starts_with: /api/}}]}}",
            NOBODY,
        )
        .path("/apiv1")
        .deny(&["http-path-unauthorized"]),
        case(
            "string ends_with: suffix",
            "policy: {allow: {or: [{email: {ends_with: '@example.com'}}]}}",
            ALICE,
        )
        .allow(&["email-ok"]),
        case(
            "string ends_with: other suffix",
            "policy: {allow: {or: [{email: {ends_with: '@example.com'}}]}}",
            BOB,
        )
        .deny(&["email-unauthorized"]),
        case(
            "string in: member",
            "
            policy:
              allow:
                or:
                  - http_method:
                      in: [GET, HEAD]
            ",
            NOBODY,
        )
        .method("HEAD")
        .allow(&["http-method-ok"]),
        case(
            "string in: not a member",
            "policy: {allow: {or: [{http_method: {in: [GET, HEAD]}}]}}",
            NOBODY,
        )
        .method("POST")
        .deny(&["http-method-unauthorized"]),
        case(
            "string not_in: not a member",
            "
            policy:
              allow:
                or:
                  - http_method:
                      not_in:
                        - DELETE
                        - PUT
            ",
            NOBODY,
        )
        .allow(&["http-method-ok"]),
        case(
            "string not_in: a member",
            "policy: {allow: {or: [{http_method: {not_in: [DELETE, PUT]}}]}}",
            NOBODY,
        )
        .method("DELETE")
        .deny(&["http-method-unauthorized"]),
        case(
            "string matcher: several operators all hold",
            "
            policy:
              allow:
                or:
                  - http_path:
                      starts_with: /api/
                      ends_with: .json
                      not: /api/secret.json
            ",
            NOBODY,
        )
        .path("/api/items.json")
        .allow(&["http-path-ok"]),
        case(
            "string matcher: one of several operators fails",
            "
            policy:
              allow:
                or:
                  - http_path:
                      starts_with: /api/
                      ends_with: .json
                      not: /api/secret.json
            ",
            NOBODY,
        )
        .path("/api/secret.json")
        .deny(&["http-path-unauthorized"]),
        // --- http_method / http_path ------------------------------------------------------
        case(
            "http_method: exact",
            "policy: {allow: {or: [{http_method: GET}]}}",
            NOBODY,
        )
        .allow(&["http-method-ok"]),
        case(
            "http_method: case-sensitive",
            "policy: {allow: {or: [{http_method: GET}]}}",
            NOBODY,
        )
        .method("get")
        .deny(&["http-method-unauthorized"]),
        case(
            "http_path: exact",
            "policy: {allow: {or: [{http_path: /health}]}}",
            NOBODY,
        )
        .path("/health")
        .allow(&["http-path-ok"]),
        case(
            "http_path: exact is not a prefix",
            "policy: {allow: {or: [{http_path: /health}]}}",
            NOBODY,
        )
        .path("/health/deep")
        .deny(&["http-path-unauthorized"]),
        // --- claim/<path> ---------------------------------------------------------------
        case(
            "claim: scalar string claim, bare value is `has`",
            "
            policy:
              allow:
                and:
                  - claim/department: eng
            ",
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "claim: scalar string claim, other value",
            "policy: {allow: {and: [{claim/department: sales}]}}",
            ALICE,
        )
        .deny(&["claim-unauthorized"]),
        case(
            "claim: a scalar claim is a one-element list for `is`",
            "policy: {allow: {and: [{claim/department: {is: eng}}]}}",
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "claim: array claim has the value",
            "policy: {allow: {and: [{claim/groups: {has: admins}}]}}",
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "claim: list `is` needs exactly one element",
            "policy: {allow: {and: [{claim/groups: {is: admins}}]}}",
            ALICE,
        )
        .deny(&["claim-unauthorized"]),
        case(
            "claim: list `is` with exactly one element",
            "policy: {allow: {and: [{claim/groups: {is: users}}]}}",
            BOB,
        )
        .allow(&["claim-ok"]),
        case(
            "claim: exclude an absent value",
            "policy: {allow: {and: [{claim/groups: {exclude: interns}}]}}",
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "claim: exclude a present value",
            "policy: {allow: {and: [{claim/groups: {exclude: eng}}]}}",
            ALICE,
        )
        .deny(&["claim-unauthorized"]),
        case(
            "claim: has and exclude must both hold",
            "
            policy:
              allow:
                and:
                  - claim/groups:
                      has: admins
                      exclude: eng
            ",
            ALICE,
        )
        .deny(&["claim-unauthorized"]),
        case(
            "claim: namespaced claim name keeps its slashes",
            "
            policy:
              allow:
                and:
                  - claim/https://example.com/roles: editor
            ",
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "claim: namespaced claim name, quoted flow key",
            r#"policy: {allow: {and: [{"claim/https://example.com/roles": {has: viewer}}]}}"#,
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "claim: namespaced claim, value absent",
            r#"policy: {allow: {and: [{"claim/https://example.com/roles": admin}]}}"#,
            ALICE,
        )
        .deny(&["claim-unauthorized"]),
        case(
            "claim: nested path with dots",
            "policy: {allow: {and: [{claim/org.team.name: core}]}}",
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "claim: nested path with slashes (pomerium.md §4.3)",
            "policy: {allow: {and: [{claim/org/team/name: core}]}}",
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "claim: nested array (Keycloak realm_access.roles)",
            "policy: {allow: {and: [{claim/realm_access.roles: ops}]}}",
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "claim: nested path through a missing key",
            "policy: {allow: {and: [{claim/org.nope.name: core}]}}",
            ALICE,
        )
        .deny(&["claim-unauthorized"]),
        case(
            "claim: an object claim is not a string",
            "policy: {allow: {and: [{claim/org: core}]}}",
            ALICE,
        )
        .deny(&["claim-unauthorized"]),
        case(
            "claim: number claim, number value",
            "policy: {allow: {and: [{claim/age: 21}]}}",
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "claim: number claim, other number",
            "policy: {allow: {and: [{claim/age: 22}]}}",
            ALICE,
        )
        .deny(&["claim-unauthorized"]),
        case(
            "claim: number claim against a quoted string",
            "policy: {allow: {and: [{claim/age: '21'}]}}",
            ALICE,
        )
        .deny(&["claim-unauthorized"]),
        case(
            "claim: boolean claim, boolean value",
            "policy: {allow: {and: [{claim/admin: true}]}}",
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "claim: boolean claim against a quoted string",
            "policy: {allow: {and: [{claim/admin: 'true'}]}}",
            ALICE,
        )
        .deny(&["claim-unauthorized"]),
        case(
            "claim: array of numbers has a number",
            "policy: {allow: {and: [{claim/ids: 2}]}}",
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "claim: array of three numbers is not `is`",
            "policy: {allow: {and: [{claim/ids: {is: 2}}]}}",
            ALICE,
        )
        .deny(&["claim-unauthorized"]),
        case(
            "claim: null claim has no string",
            "policy: {allow: {and: [{claim/nickname: bob}]}}",
            ALICE,
        )
        .deny(&["claim-unauthorized"]),
        case(
            "claim: null claim excludes any string",
            "policy: {allow: {and: [{claim/nickname: {exclude: bob}}]}}",
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "claim: missing claim has nothing",
            "policy: {allow: {and: [{claim/missing: x}]}}",
            ALICE,
        )
        .deny(&["claim-unauthorized"]),
        case(
            "claim: missing claim excludes everything",
            "policy: {allow: {and: [{claim/missing: {exclude: x}}]}}",
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "claim: empty-string claim has the empty string",
            "policy: {allow: {and: [{claim/empty: ''}]}}",
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "claim: standard claims are claims too",
            "policy: {allow: {and: [{claim/sub: alice}]}}",
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "claim: nobody signs in",
            "policy: {allow: {and: [{claim/department: eng}]}}",
            NOBODY,
        )
        .sign_in(),
        // --- groups ---------------------------------------------------------------------
        case(
            "groups: has",
            "policy: {allow: {or: [{groups: admins}]}}",
            ALICE,
        )
        .allow(&["groups-ok"]),
        case(
            "groups: is, with exactly one group",
            "policy: {allow: {or: [{groups: {is: users}}]}}",
            BOB,
        )
        .allow(&["groups-ok"]),
        case(
            "groups: exclude a group the user has",
            "policy: {allow: {or: [{groups: {exclude: admins}}]}}",
            ALICE,
        )
        .deny(&["groups-unauthorized"]),
        case(
            "groups: a user without groups",
            "policy: {allow: {or: [{groups: admins}]}}",
            CAROL,
        )
        .deny(&["groups-unauthorized"]),
        case(
            "groups: nobody signs in",
            "policy: {allow: {or: [{groups: admins}]}}",
            NOBODY,
        )
        .sign_in(),
        // --- source_ip ------------------------------------------------------------------
        case(
            "source_ip: IPv4 CIDR contains the peer",
            "policy: {allow: {or: [{source_ip: 10.0.0.0/8}]}}",
            NOBODY,
        )
        .ip("10.1.2.3")
        .allow(&["source-ip-ok"]),
        case(
            "source_ip: IPv4 CIDR does not contain the peer",
            "policy: {allow: {or: [{source_ip: 10.0.0.0/8}]}}",
            NOBODY,
        )
        .ip("11.0.0.1")
        .deny(&["source-ip-unauthorized"]),
        case(
            "source_ip: a single IPv4 address is a /32",
            "policy: {allow: {or: [{source_ip: 192.0.2.7}]}}",
            NOBODY,
        )
        .ip("192.0.2.7")
        .allow(&["source-ip-ok"]),
        case(
            "source_ip: the /32 excludes its neighbour",
            "policy: {allow: {or: [{source_ip: 192.0.2.7}]}}",
            NOBODY,
        )
        .ip("192.0.2.8")
        .deny(&["source-ip-unauthorized"]),
        case(
            "source_ip: list with an IPv6 CIDR",
            "
            policy:
              allow:
                or:
                  - source_ip:
                      - 10.0.0.0/8
                      - 2001:db8::/32
            ",
            NOBODY,
        )
        .ip("2001:db8:1::5")
        .allow(&["source-ip-ok"]),
        case(
            "source_ip: IPv6 peer outside the list",
            "policy: {allow: {or: [{source_ip: [10.0.0.0/8, '2001:db8::/32']}]}}",
            NOBODY,
        )
        .ip("2001:db9::1")
        .deny(&["source-ip-unauthorized"]),
        case(
            "source_ip: a single IPv6 address is a /128",
            "policy: {allow: {or: [{source_ip: '::1'}]}}",
            NOBODY,
        )
        .ip("::1")
        .allow(&["source-ip-ok"]),
        case(
            "source_ip: the /128 excludes its neighbour",
            "policy: {allow: {or: [{source_ip: '::1'}]}}",
            NOBODY,
        )
        .ip("::2")
        .deny(&["source-ip-unauthorized"]),
        case(
            "source_ip: IPv4-mapped IPv6 peer matches an IPv4 network",
            "policy: {allow: {or: [{source_ip: 10.0.0.0/8}]}}",
            NOBODY,
        )
        .ip("::ffff:10.9.9.9")
        .allow(&["source-ip-ok"]),
        case(
            "source_ip: IPv4 peer is not in ::/0",
            "policy: {allow: {or: [{source_ip: '::/0'}]}}",
            NOBODY,
        )
        .ip("192.0.2.1")
        .deny(&["source-ip-unauthorized"]),
        case(
            "source_ip: 0.0.0.0/0 holds every IPv4 peer",
            "policy: {allow: {or: [{source_ip: 0.0.0.0/0}]}}",
            NOBODY,
        )
        .ip("203.0.113.9")
        .allow(&["source-ip-ok"]),
        case(
            "source_ip: unknown peer address matches nothing",
            "policy: {allow: {or: [{source_ip: 0.0.0.0/0}]}}",
            NOBODY,
        )
        .deny(&["source-ip-unauthorized"]),
        // --- cors_preflight -------------------------------------------------------------
        case(
            "cors_preflight: OPTIONS with Origin and Access-Control-Request-Method",
            "policy: {allow: {or: [{cors_preflight: true}]}}",
            NOBODY,
        )
        .preflight()
        .allow(&["cors-request"]),
        case(
            "cors_preflight: OPTIONS without Access-Control-Request-Method",
            "policy: {allow: {or: [{cors_preflight: true}]}}",
            NOBODY,
        )
        .method("OPTIONS")
        .header("origin", "https://app.example.com")
        .deny(&["non-cors-request"]),
        case(
            "cors_preflight: GET with both headers",
            "policy: {allow: {or: [{cors_preflight: true}]}}",
            NOBODY,
        )
        .preflight()
        .method("GET")
        .deny(&["non-cors-request"]),
        case(
            "cors_preflight: the method is case-sensitive",
            "policy: {allow: {or: [{cors_preflight: true}]}}",
            NOBODY,
        )
        .preflight()
        .method("options")
        .deny(&["non-cors-request"]),
        // --- client_certificate ---------------------------------------------------------
        case(
            "client_certificate: fingerprint, lowercase form",
            "
            policy:
              allow:
                and:
                  - client_certificate:
                      fingerprint: 77a922d64ebfc8fc401c491ddca5499702203862c33a8c6dc4b20de8f2d8b4cf
            ",
            NOBODY,
        )
        .cert(alice_cert())
        .allow(&["client-certificate-ok"]),
        case(
            "client_certificate: fingerprint, colon form in a list",
            "
            policy:
              allow:
                and:
                  - client_certificate:
                      fingerprint:
                        - 0000000000000000000000000000000000000000000000000000000000000000
                        - '77:A9:22:D6:4E:BF:C8:FC:40:1C:49:1D:DC:A5:49:97:02:20:38:62:C3:3A:8C:6D:C4:B2:0D:E8:F2:D8:B4:CF'
            ",
            NOBODY,
        )
        .cert(alice_cert())
        .allow(&["client-certificate-ok"]),
        case(
            "client_certificate: another fingerprint",
            "policy: {allow: {and: [{client_certificate: {fingerprint: 0000000000000000000000000000000000000000000000000000000000000000}}]}}",
            NOBODY,
        )
        .cert(alice_cert())
        .deny(&["client-certificate-unauthorized"]),
        case(
            "client_certificate: spki_hash",
            "policy: {allow: {and: [{client_certificate: {spki_hash: 'DsZyz7GNBxWvUnfjjOGlOyaDHDDeTDzT7t8GwXdabXM='}}]}}",
            NOBODY,
        )
        .cert(alice_cert())
        .allow(&["client-certificate-ok"]),
        case(
            "client_certificate: another spki_hash",
            "policy: {allow: {and: [{client_certificate: {spki_hash: 'RgZiC82hqpI1OEXvwa48z8/KodkbLiXEkknsdiGsMdw='}}]}}",
            NOBODY,
        )
        .cert(alice_cert())
        .deny(&["client-certificate-unauthorized"]),
        case(
            "client_certificate: san_email string matcher",
            "policy: {allow: {and: [{client_certificate: {san_email: {ends_with: '@example.com'}}}]}}",
            NOBODY,
        )
        .cert(alice_cert())
        .allow(&["client-certificate-ok"]),
        case(
            "client_certificate: san_dns matches any of the names",
            "policy: {allow: {and: [{client_certificate: {san_dns: svc.internal}}]}}",
            NOBODY,
        )
        .cert(alice_cert())
        .allow(&["client-certificate-ok"]),
        case(
            "client_certificate: san_uri prefix",
            "policy: {allow: {and: [{client_certificate: {san_uri: {starts_with: 'spiffe://example.org/'}}}]}}",
            NOBODY,
        )
        .cert(alice_cert())
        .allow(&["client-certificate-ok"]),
        case(
            "client_certificate: san_uri mismatch",
            "policy: {allow: {and: [{client_certificate: {san_uri: {starts_with: 'spiffe://other.org/'}}}]}}",
            NOBODY,
        )
        .cert(alice_cert())
        .deny(&["client-certificate-unauthorized"]),
        case(
            "client_certificate: every condition must hold",
            "
            policy:
              allow:
                and:
                  - client_certificate:
                      spki_hash: DsZyz7GNBxWvUnfjjOGlOyaDHDDeTDzT7t8GwXdabXM=
                      san_dns: nope.internal
            ",
            NOBODY,
        )
        .cert(alice_cert())
        .deny(&["client-certificate-unauthorized"]),
        case(
            "client_certificate: no certificate presented",
            "policy: {allow: {and: [{client_certificate: {san_dns: svc.internal}}]}}",
            NOBODY,
        )
        .deny(&["client-certificate-unauthorized"]),
        // --- invalid_client_certificate and the 495 ---------------------------------------
        case(
            "invalid_client_certificate: missing certificate is 495",
            "
            policy:
              - allow:
                  or:
                    - accept: true
              - deny:
                  or:
                    - invalid_client_certificate: true
            ",
            NOBODY,
        )
        .cert495(&["client-certificate-required"]),
        case(
            "invalid_client_certificate: invalid certificate is 495",
            "policy: [{allow: {or: [{accept: true}]}}, {deny: {or: [{invalid_client_certificate: true}]}}]",
            ALICE,
        )
        .cert(ClientCertificate::Invalid)
        .cert495(&["invalid-client-certificate"]),
        case(
            "invalid_client_certificate: valid certificate passes",
            "policy: [{allow: {or: [{accept: true}]}}, {deny: {or: [{invalid_client_certificate: true}]}}]",
            NOBODY,
        )
        .cert(alice_cert())
        .allow(&["accept"]),
        case(
            "decision order: a certificate problem comes before sign-in",
            "
            policy:
              allow:
                and:
                  - authenticated_user: true
              deny:
                or:
                  - invalid_client_certificate: true
            ",
            NOBODY,
        )
        .cert495(&["client-certificate-required"]),
        case(
            "decision order: deny `and` with the certificate reason only when it holds",
            "policy: [{allow: {or: [{accept: true}]}}, {deny: {and: [{invalid_client_certificate: true}, {http_path: /admin}]}}]",
            NOBODY,
        )
        .path("/public")
        .allow(&["accept"]),
        case(
            "decision order: deny `and` that holds gives 495",
            "policy: [{allow: {or: [{accept: true}]}}, {deny: {and: [{invalid_client_certificate: true}, {http_path: /admin}]}}]",
            NOBODY,
        )
        .path("/admin")
        .cert495(&["client-certificate-required", "http-path-ok"]),
        case(
            "allow `not invalid_client_certificate` with a valid certificate",
            "policy: {allow: {not: [{invalid_client_certificate: true}]}}",
            NOBODY,
        )
        .cert(alice_cert())
        .allow(&["valid-client-certificate"]),
        case(
            "allow `not invalid_client_certificate` without a certificate is 495",
            "policy: {allow: {not: [{invalid_client_certificate: true}]}}",
            NOBODY,
        )
        .cert495(&["client-certificate-required"]),
        // --- operators ------------------------------------------------------------------
        case(
            "and: all true keeps every reason",
            "policy: {allow: {and: [{http_method: GET}, {http_path: /a}]}}",
            NOBODY,
        )
        .path("/a")
        .allow(&["http-method-ok", "http-path-ok"]),
        case(
            "and: one false keeps the false reasons",
            "policy: {allow: {and: [{http_method: GET}, {http_path: /a}]}}",
            NOBODY,
        )
        .path("/b")
        .deny(&["http-path-unauthorized"]),
        case(
            "or: one true keeps the true reasons",
            "policy: {allow: {or: [{http_method: GET}, {http_path: /a}]}}",
            NOBODY,
        )
        .path("/b")
        .allow(&["http-method-ok"]),
        case(
            "or: all false keeps every reason",
            "policy: {allow: {or: [{http_method: GET}, {http_path: /a}]}}",
            NOBODY,
        )
        .method("POST")
        .path("/b")
        .deny(&["http-method-unauthorized", "http-path-unauthorized"]),
        case(
            "not: true when every criterion is false (NOR)",
            "policy: {allow: {not: [{http_method: GET}, {http_path: /a}]}}",
            NOBODY,
        )
        .method("POST")
        .path("/b")
        .allow(&["http-method-unauthorized", "http-path-unauthorized"]),
        case(
            "not: false when one criterion is true",
            "policy: {allow: {not: [{http_method: GET}, {http_path: /a}]}}",
            NOBODY,
        )
        .path("/b")
        .deny(&["http-method-ok"]),
        case(
            "nor: true when at least one criterion is false (NAND)",
            "policy: {allow: {nor: [{http_method: GET}, {http_path: /a}]}}",
            NOBODY,
        )
        .path("/b")
        .allow(&["http-path-unauthorized"]),
        case(
            "nor: false when every criterion is true",
            "policy: {allow: {nor: [{http_method: GET}, {http_path: /a}]}}",
            NOBODY,
        )
        .path("/a")
        .deny(&["http-method-ok", "http-path-ok"]),
        case(
            "operators of one block are OR-ed",
            "
            policy:
              allow:
                and:
                  - reject: true
                or:
                  - http_method: GET
            ",
            NOBODY,
        )
        .allow(&["http-method-ok"]),
        case(
            "rules of a list are OR-ed",
            "
            policy:
              - allow:
                  or:
                    - reject: true
              - allow:
                  or:
                    - email: alice@example.com
            ",
            ALICE,
        )
        .allow(&["email-ok"]),
        case(
            "nested operators: and + not across rules, all hold",
            "
            policy:
              - allow:
                  and:
                    - domain: example.com
                    - http_method: {in: [GET, POST]}
                  not:
                    - reject: true
              - deny:
                  or:
                    - http_path: {starts_with: /admin}
            ",
            ALICE,
        )
        .allow(&["domain-ok", "http-method-ok", "reject"]),
        case(
            "nested operators: the deny rule wins on /admin",
            "
            policy:
              - allow:
                  and:
                    - domain: example.com
                    - http_method: {in: [GET, POST]}
              - deny:
                  or:
                    - http_path: {starts_with: /admin}
            ",
            ALICE,
        )
        .path("/admin/users")
        .deny(&["http-path-ok"]),
        case(
            "`or` satisfied without a session needs no sign-in",
            "policy: {allow: {or: [{email: alice@example.com}, {http_method: GET}]}}",
            NOBODY,
        )
        .allow(&["http-method-ok"]),
        case(
            "`or` unsatisfied with a session criterion asks for sign-in",
            "policy: {allow: {or: [{email: alice@example.com}, {http_method: GET}]}}",
            NOBODY,
        )
        .method("POST")
        .sign_in(),
        case(
            "`or` with accept lets nobody in before any sign-in",
            "policy: {allow: {or: [{accept: true}, {authenticated_user: true}]}}",
            NOBODY,
        )
        .allow(&["accept"]),
        case(
            "`and` with accept still asks for sign-in",
            "policy: {allow: {and: [{accept: true}, {authenticated_user: true}]}}",
            NOBODY,
        )
        .sign_in(),
        case(
            "`not` of a session criterion asks nobody to sign in",
            "policy: {allow: {not: [{email: mallory@example.com}]}}",
            NOBODY,
        )
        .sign_in(),
        case(
            "`not` of a session criterion, signed in",
            "policy: {allow: {not: [{email: mallory@example.com}]}}",
            ALICE,
        )
        .allow(&["email-unauthorized"]),
        case(
            "an `action` key inside the block is ignored",
            "policy: {allow: {action: allow, or: [{accept: true}]}}",
            NOBODY,
        )
        .allow(&["accept"]),
        case(
            "an empty `and` list decides nothing",
            "policy: {allow: {and: []}}",
            ALICE,
        )
        .deny(&[]),
        case(
            "sluice extension: the policy may be a string holding JSON",
            r#"policy: '{"allow": {"or": [{"email": {"is": "alice@example.com"}}]}}'"#,
            ALICE,
        )
        .allow(&["email-ok"]),
        // --- deny over allow and the decision order ------------------------------------
        case(
            "deny beats allow",
            "policy: [{allow: {or: [{accept: true}]}}, {deny: {or: [{http_method: POST}]}}]",
            ALICE,
        )
        .method("POST")
        .deny(&["http-method-ok"]),
        case(
            "a deny that does not hold leaves the allow",
            "policy: [{allow: {or: [{accept: true}]}}, {deny: {or: [{http_method: POST}]}}]",
            ALICE,
        )
        .allow(&["accept"]),
        case(
            "deny on the user",
            "
            policy:
              allow:
                or:
                  - authenticated_user: true
              deny:
                or:
                  - email: bob@other.org
            ",
            BOB,
        )
        .deny(&["email-ok"]),
        case(
            "sign-in comes before a deny that holds",
            "
            policy:
              allow:
                or:
                  - authenticated_user: true
              deny:
                or:
                  - http_method: POST
            ",
            NOBODY,
        )
        .method("POST")
        .sign_in(),
        case(
            "a deny-only policy allows nobody, with no reasons",
            "policy: {deny: {or: [{email: bob@other.org}]}}",
            ALICE,
        )
        .deny(&[]),
        case(
            "a deny-only policy with a session criterion asks nobody to sign in",
            "policy: {deny: {or: [{email: bob@other.org}]}}",
            NOBODY,
        )
        .sign_in(),
        case(
            "no policy at all: 403 for nobody, no sign-in",
            "name: empty",
            NOBODY,
        )
        .deny(&[]),
        case(
            "no policy at all: 403 for a signed-in user",
            "name: empty",
            ALICE,
        )
        .deny(&[]),
        // --- shorthands -----------------------------------------------------------------
        case(
            "allow_public_unauthenticated_access",
            "allow_public_unauthenticated_access: true",
            NOBODY,
        )
        .allow(&["accept"]),
        case(
            "allow_public_unauthenticated_access: false is no policy",
            "allow_public_unauthenticated_access: false",
            NOBODY,
        )
        .deny(&[]),
        case(
            "a deny needing a session triggers sign-in on a public route",
            "
            allow_public_unauthenticated_access: true
            policy:
              deny:
                or:
                  - email: mallory@example.com
            ",
            NOBODY,
        )
        .sign_in(),
        case(
            "public route with a deny on the user, signed in",
            "
            allow_public_unauthenticated_access: true
            policy:
              deny:
                or:
                  - email: mallory@example.com
            ",
            ALICE,
        )
        .allow(&["accept"]),
        case(
            "allow_any_authenticated_user: nobody",
            "allow_any_authenticated_user: true",
            NOBODY,
        )
        .sign_in(),
        case(
            "allow_any_authenticated_user: anyone",
            "allow_any_authenticated_user: true",
            CAROL,
        )
        .allow(&["user-ok"]),
        case(
            "allowed_users: by email",
            "allowed_users: [alice@example.com]",
            ALICE,
        )
        .allow(&["email-ok"]),
        case(
            "allowed_users: by user id",
            "
            allowed_users:
              - alice
            ",
            ALICE,
        )
        .allow(&["user-ok"]),
        case(
            "allowed_users: someone else",
            "allowed_users: [alice@example.com, alice]",
            BOB,
        )
        .deny(&["email-unauthorized", "user-unauthorized"]),
        case(
            "allowed_users: nobody",
            "allowed_users: [alice@example.com]",
            NOBODY,
        )
        .sign_in(),
        case(
            "allowed_domains: member",
            "allowed_domains: [example.com]",
            ALICE,
        )
        .allow(&["domain-ok"]),
        case(
            "allowed_domains: not a member",
            "allowed_domains: [example.com]",
            BOB,
        )
        .deny(&["domain-unauthorized"]),
        case(
            "allowed_idp_claims: list claim",
            "
            allowed_idp_claims:
              groups: [admins]
            ",
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "allowed_idp_claims: no value matches",
            "
            allowed_idp_claims:
              groups: [admins]
            ",
            BOB,
        )
        .deny(&["claim-unauthorized"]),
        case(
            "allowed_idp_claims: namespaced name and a number",
            "
            allowed_idp_claims:
              'https://example.com/roles': [publisher]
              age: [21]
            ",
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "allowed_idp_claims: a scalar instead of a list",
            "
            allowed_idp_claims:
              department: eng
            ",
            ALICE,
        )
        .allow(&["claim-ok"]),
        case(
            "cors_allow_preflight: preflight passes without a session",
            "
            cors_allow_preflight: true
            allowed_users: [alice@example.com]
            ",
            NOBODY,
        )
        .preflight()
        .allow(&["cors-request"]),
        case(
            "cors_allow_preflight: other requests still sign in",
            "
            cors_allow_preflight: true
            allowed_users: [alice@example.com]
            ",
            NOBODY,
        )
        .sign_in(),
        case(
            "shorthands and an embedded policy are OR-ed (policy side)",
            "
            allowed_domains: [other.org]
            policy:
              allow:
                or:
                  - email: alice@example.com
            ",
            ALICE,
        )
        .allow(&["email-ok"]),
        case(
            "shorthands and an embedded policy are OR-ed (shorthand side)",
            "
            allowed_domains: [other.org]
            policy:
              allow:
                or:
                  - email: alice@example.com
            ",
            BOB,
        )
        .allow(&["domain-ok"]),
        case(
            "a shorthand allow and a policy deny",
            "
            allow_any_authenticated_user: true
            policy:
              deny:
                or:
                  - groups: users
            ",
            BOB,
        )
        .deny(&["groups-ok"]),
        case(
            "legacy top-level `policy` list with a shorthand",
            "allowed_users: [alice@example.com]",
            ALICE,
        )
        .legacy()
        .allow(&["email-ok"]),
        case(
            "legacy top-level `policy` list with a PPL policy",
            "
            policy:
              allow:
                or:
                  - http_method: GET
            ",
            NOBODY,
        )
        .legacy()
        .method("PUT")
        .deny(&["http-method-unauthorized"]),
    ]
}

#[test]
fn policy_table() {
    let cases = cases();
    assert!(
        cases.len() >= 70,
        "the table should have at least 70 cases, it has {}",
        cases.len()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let mut names = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        if !names.insert(case.name) {
            failures.push(format!("  {}: the case name is used twice", case.name));
        }
        if let Err(e) = run(dir.path(), i, case) {
            failures.push(format!("  {}: {e}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} case(s) failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
