//! Property tests for policies: whatever a config's policy holds, loading it never panics and
//! every problem is a diagnostic with a line and a message (on the right line, where we know
//! it); policies that load evaluate any request without panicking, follow Pomerium's
//! decision order, and keep the algebra of `and` / `or` / `not` / `nor`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};
use sluice::authz::tokens::identity_from;
use sluice::config::Model;
use sluice::document::{Rejected, Severity};
use sluice::policy::Policy;
use sluice::policy::eval::{
    CertificateInfo, ClientCertificate, Evaluation, Identity, Input, Verdict, evaluate,
    evaluate_traced,
};
use sluice::request_headers::{HeaderEntry, RequestHeaders};

/// Bounded so the whole file runs in a few seconds in a debug build. Failures are not
/// persisted to a file: proptest prints the minimal failing input instead.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const HEADER: &str = "insecure_server: true\naddress: 127.0.0.1:8080\nroutes:\n";

/// A route from `from` to the discard port, with `rest` (already indented) after it.
fn route(host: &str, rest: &str) -> String {
    format!("  - from: http://{host}\n    to: http://127.0.0.1:9\n{rest}")
}

fn load(text: &[u8]) -> Result<Model, Rejected> {
    let path = crate::common::testdata().join("configs/policy-fuzz.yaml");
    sluice::config::load_bytes(&path, text)
}

/// Loads in process and checks every diagnostic.
fn load_checked(text: &[u8]) -> Result<Option<Result<Model, Rejected>>, TestCaseError> {
    let outcome = load(text);
    check_diagnostics(text, &outcome)?;
    Ok(Some(outcome))
}

/// Every diagnostic has a line inside the document, a column, and a message; a rejection has
/// at least one error, and counts them right.
fn check_diagnostics(text: &[u8], outcome: &Result<Model, Rejected>) -> Result<(), TestCaseError> {
    // Generous: any character some YAML reader may take for a line break counts.
    let lossy = String::from_utf8_lossy(text);
    let breaks = lossy
        .chars()
        .filter(|c| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}'))
        .count();
    let max_line = breaks + 2;
    let diagnostics = match outcome {
        Ok(model) => &model.warnings,
        Err(rejected) => {
            let errors = rejected
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            prop_assert!(errors >= 1, "rejected without an error: {rejected:?}");
            prop_assert_eq!(errors, rejected.errors);
            &rejected.diagnostics
        }
    };
    for d in diagnostics {
        let line = d.span.line as usize;
        prop_assert!(
            (1..=max_line).contains(&line),
            "line {} outside 1..={}: {}",
            line,
            max_line,
            d
        );
        prop_assert!(d.span.col >= 1, "no column: {}", d);
        prop_assert!(!d.message.trim().is_empty(), "empty message: {:?}", d);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Rendering a JSON value as YAML: flow (JSON is YAML), block, or a string holding JSON.

#[derive(Clone, Copy, Debug)]
enum Style {
    Flow,
    Block,
    JsonString,
}

fn scalar_text(v: &Value) -> String {
    serde_json::to_string(v).expect("JSON")
}

fn is_inline(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => true,
    }
}

fn block(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(entries) if !entries.is_empty() => {
            for (k, item) in entries {
                out.push_str(&format!("{pad}{}:", scalar_text(&Value::String(k.clone()))));
                if is_inline(item) {
                    out.push_str(&format!(" {}\n", scalar_text(item)));
                } else {
                    out.push('\n');
                    block(item, indent + 2, out);
                }
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                if is_inline(item) {
                    out.push_str(&format!("{pad}- {}\n", scalar_text(item)));
                } else {
                    out.push_str(&format!("{pad}-\n"));
                    block(item, indent + 2, out);
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar_text(other))),
    }
}

/// `    <key>: <value>` at route level, in the given style.
fn route_key(key: &str, value: &Value, style: Style) -> String {
    match style {
        Style::Flow => format!("    {key}: {}\n", scalar_text(value)),
        Style::JsonString => format!(
            "    {key}: {}\n",
            scalar_text(&Value::String(scalar_text(value)))
        ),
        Style::Block if is_inline(value) => format!("    {key}: {}\n", scalar_text(value)),
        Style::Block => {
            let mut out = format!("    {key}:\n");
            block(value, 6, &mut out);
            out
        }
    }
}

fn style() -> impl Strategy<Value = Style> {
    prop_oneof![
        Just(Style::Flow),
        Just(Style::Block),
        Just(Style::JsonString)
    ]
}

// ---------------------------------------------------------------------------------------------
// Valid policies.

const CRITERIA_WITHOUT_DATA: &[&str] = &[
    "accept",
    "reject",
    "authenticated_user",
    "cors_preflight",
    "invalid_client_certificate",
];
const STRING_CRITERIA: &[&str] = &["user", "email", "domain", "http_method", "http_path"];
const SESSION_CRITERIA: &[&str] = &["authenticated_user", "user", "email", "domain", "groups"];

const FINGERPRINT: &str = "77a922d64ebfc8fc401c491ddca5499702203862c33a8c6dc4b20de8f2d8b4cf";
const FINGERPRINT_COLONS: &str = "77:A9:22:D6:4E:BF:C8:FC:40:1C:49:1D:DC:A5:49:97:02:20:38:62:C3:3A:8C:6D:C4:B2:0D:E8:F2:D8:B4:CF";
const OTHER_FINGERPRINT: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const SPKI: &str = "DsZyz7GNBxWvUnfjjOGlOyaDHDDeTDzT7t8GwXdabXM=";
const OTHER_SPKI: &str = "RgZiC82hqpI1OEXvwa48z8/KodkbLiXEkknsdiGsMdw=";

/// Strings that sometimes match the random requests, and some that never do.
fn sample_string() -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(vec![
            "alice", "bob", "alice@example.com", "bob@other.org", "example.com", "other.org",
            "GET", "POST", "OPTIONS", "/", "/api/", "/admin", ".json", "admins", "eng", "users",
            "core", "21", "true", "", "a.internal", "spiffe://example.org/",
        ])
        .prop_map(str::to_string),
        1 => "[a-zA-Z0-9@._/-]{0,12}",
        1 => "\\PC{0,8}",
    ]
    .boxed()
}

fn string_matcher() -> BoxedStrategy<Value> {
    let op = prop_oneof![
        (
            select(vec!["is", "not", "contains", "starts_with", "ends_with"]),
            sample_string()
        )
            .prop_map(|(o, s)| (o.to_string(), Value::String(s))),
        (select(vec!["in", "not_in"]), vec(sample_string(), 0..4))
            .prop_map(|(o, v)| (o.to_string(), json!(v))),
    ];
    prop_oneof![
        sample_string().prop_map(Value::String),
        vec(op, 1..4).prop_map(|ops| Value::Object(ops.into_iter().collect())),
    ]
    .boxed()
}

fn list_scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        3 => sample_string().prop_map(Value::String),
        1 => (0i64..30).prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::Bool),
    ]
    .boxed()
}

fn list_matcher() -> BoxedStrategy<Value> {
    let op =
        (select(vec!["has", "is", "exclude"]), list_scalar()).prop_map(|(o, v)| (o.to_string(), v));
    prop_oneof![
        list_scalar(),
        vec(op, 1..4).prop_map(|ops| Value::Object(ops.into_iter().collect())),
    ]
    .boxed()
}

const CLAIM_PATHS: &[&str] = &[
    "groups",
    "department",
    "org.team",
    "org/team/name",
    "https://example.com/roles",
    "age",
    "admin",
    "ids",
    "missing",
    "a.b.c.d.e",
];

fn cidr() -> BoxedStrategy<String> {
    prop_oneof![
        (any::<Ipv4Addr>(), 0u8..=32).prop_map(|(ip, p)| format!("{ip}/{p}")),
        any::<Ipv4Addr>().prop_map(|ip| ip.to_string()),
        (any::<Ipv6Addr>(), 0u8..=128).prop_map(|(ip, p)| format!("{ip}/{p}")),
        any::<Ipv6Addr>().prop_map(|ip| ip.to_string()),
        select(vec![
            "10.0.0.0/8",
            "0.0.0.0/0",
            "::/0",
            "::1",
            "2001:db8::/32"
        ])
        .prop_map(str::to_string),
    ]
    .boxed()
}

fn cert_matcher() -> BoxedStrategy<Value> {
    let fingerprint = select(vec![FINGERPRINT, FINGERPRINT_COLONS, OTHER_FINGERPRINT]);
    let spki = select(vec![SPKI, OTHER_SPKI]);
    let entry = prop_oneof![
        fingerprint
            .clone()
            .prop_map(|f| ("fingerprint".to_string(), json!(f))),
        vec(fingerprint, 1..3).prop_map(|f| ("fingerprint".to_string(), json!(f))),
        spki.clone()
            .prop_map(|s| ("spki_hash".to_string(), json!(s))),
        vec(spki, 1..3).prop_map(|s| ("spki_hash".to_string(), json!(s))),
        (
            select(vec!["san_email", "san_dns", "san_uri"]),
            string_matcher()
        )
            .prop_map(|(k, m)| (k.to_string(), m)),
    ];
    vec(entry, 0..4)
        .prop_map(|e| Value::Object(e.into_iter().collect()))
        .boxed()
}

fn one(name: impl Into<String>, data: Value) -> Value {
    let mut m = Map::new();
    m.insert(name.into(), data);
    Value::Object(m)
}

fn valid_criterion() -> BoxedStrategy<Value> {
    prop_oneof![
        select(CRITERIA_WITHOUT_DATA).prop_map(|n| one(n, json!(true))),
        (select(STRING_CRITERIA), string_matcher()).prop_map(|(n, m)| one(n, m)),
        (select(CLAIM_PATHS), list_matcher()).prop_map(|(p, m)| one(format!("claim/{p}"), m)),
        list_matcher().prop_map(|m| one("groups", m)),
        prop_oneof![
            cidr().prop_map(Value::String),
            vec(cidr(), 1..5).prop_map(|c| json!(c))
        ]
        .prop_map(|c| one("source_ip", c)),
        cert_matcher().prop_map(|m| one("client_certificate", m)),
    ]
    .boxed()
}

fn valid_rule() -> BoxedStrategy<Value> {
    let block = vec(
        (
            select(vec!["and", "or", "not", "nor"]),
            vec(valid_criterion(), 0..4),
        ),
        1..4,
    )
    .prop_map(|ops| {
        Value::Object(
            ops.into_iter()
                .map(|(o, c)| (o.to_string(), Value::Array(c)))
                .collect(),
        )
    });
    btree_map(select(vec!["allow", "deny"]), block, 1..=2)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
        .boxed()
}

fn valid_policy() -> BoxedStrategy<Value> {
    prop_oneof![valid_rule(), vec(valid_rule(), 1..4).prop_map(Value::Array)].boxed()
}

/// (rules, criteria) a valid policy document holds.
fn shape(policy: &Value) -> (usize, usize) {
    let rules: Vec<&Map<String, Value>> = match policy {
        Value::Array(items) => items.iter().filter_map(Value::as_object).collect(),
        Value::Object(o) => vec![o],
        _ => Vec::new(),
    };
    let mut counts = (0, 0);
    for rule in rules {
        for block in rule.values() {
            counts.0 += 1;
            for list in block.as_object().into_iter().flat_map(|b| b.values()) {
                counts.1 += list.as_array().map_or(0, Vec::len);
            }
        }
    }
    counts
}

fn criteria_count(policy: &Policy) -> usize {
    policy
        .rules
        .iter()
        .map(|r| r.and.len() + r.or.len() + r.not.len() + r.nor.len())
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Plausible-but-wrong policies.

/// Strings that break things: bad CIDRs, bad fingerprints, unicode, escapes, control chars.
fn weird_string() -> BoxedStrategy<String> {
    prop_oneof![
        2 => select(vec![
            "10.0.0.0/33", "999.1.1.1", "::1/129", "1.2.3.4/-1", "1.2.3.4/", "/8", "fe80::1%eth0",
            "10.0.0.0/8/8", "1.2.3", "", " ", "abc", "0x0a000001", "77:a9:22", "not base64!",
            "AAAA", "claim/", "claim", "allow", "deny", "and", "é", "🦀", "e\u{301}mail",
            "\u{feff}email", "a\u{2028}b", "x: y", "- z", "{[", "&anchor", "*alias", "!!str",
            "%YAML", "#", "'", "\"", "\\", "\t",
        ])
        .prop_map(str::to_string),
        2 => "\\PC{0,12}",
        1 => "[\\u{a0}-\\u{10FFFF}]{1,4}",
        1 => ".{0,12}",
    ]
    .boxed()
}

fn junk_scalar() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        weird_string().prop_map(Value::String),
        sample_string().prop_map(Value::String),
    ]
    .boxed()
}

fn junk_key() -> BoxedStrategy<String> {
    prop_oneof![
        select(vec![
            "accept",
            "reject",
            "authenticated_user",
            "user",
            "email",
            "domain",
            "groups",
            "http_method",
            "http_path",
            "source_ip",
            "cors_preflight",
            "client_certificate",
            "invalid_client_certificate",
            "claim/groups",
            "claim/",
            "claim",
            "email/x",
            "emial",
            "sorce_ip",
            "device",
            "date",
            "pomerium_routes",
            "and",
            "or",
            "not",
            "nor",
            "xor",
            "action",
            "allow",
            "deny",
            "is",
            "not",
            "contains",
            "starts_with",
            "ends_with",
            "in",
            "not_in",
            "has",
            "exclude",
            "fingerprint",
            "spki_hash",
            "san_email",
            "san_dns",
            "san_uri",
            "issuer",
        ])
        .prop_map(str::to_string),
        weird_string(),
    ]
    .boxed()
}

/// Any JSON value, keyed mostly with PPL words.
fn junk_value() -> BoxedStrategy<Value> {
    junk_scalar()
        .prop_recursive(6, 64, 8, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..8).prop_map(Value::Array),
                btree_map(junk_key(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
        .boxed()
}

/// `value` wrapped `depth` times in lists or `and` blocks (past the loader's depth limit).
fn deep(value: Value, depth: usize, as_block: bool) -> Value {
    (0..depth).fold(value, |v, _| {
        if as_block {
            one("and", json!([v]))
        } else {
            json!([v])
        }
    })
}

fn huge_list() -> BoxedStrategy<Value> {
    prop_oneof![
        vec(cidr(), 200..1000).prop_map(|v| json!(v)),
        vec(weird_string(), 200..1000).prop_map(|v| json!(v)),
    ]
    .boxed()
}

fn wrong_data() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => junk_value(),
        2 => string_matcher(),
        2 => list_matcher(),
        1 => huge_list(),
        1 => huge_list().prop_map(|l| one("in", l)),
        1 => (junk_value(), 0usize..100, any::<bool>()).prop_map(|(v, d, b)| deep(v, d, b)),
        1 => (select(vec!["fingerprint", "spki_hash", "san_email", "issuer"]), junk_value())
            .prop_map(|(k, v)| one(k, v)),
    ]
    .boxed()
}

fn wrong_criterion() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => (junk_key(), wrong_data()).prop_map(|(k, v)| one(k, v)),
        2 => valid_criterion(),
        1 => btree_map(junk_key(), wrong_data(), 0..3)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        1 => junk_scalar(),
    ]
    .boxed()
}

fn wrong_policy() -> BoxedStrategy<Value> {
    let action = prop_oneof![
        3 => select(vec!["allow", "deny"]).prop_map(str::to_string),
        1 => junk_key(),
    ];
    let operator = prop_oneof![
        3 => select(vec!["and", "or", "not", "nor"]).prop_map(str::to_string),
        1 => junk_key(),
    ];
    let criteria = prop_oneof![
        4 => vec(wrong_criterion(), 0..6).prop_map(Value::Array),
        1 => junk_value(),
    ];
    let block = prop_oneof![
        4 => btree_map(operator, criteria, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        1 => junk_value(),
    ];
    let rule = btree_map(action, block, 0..3).prop_map(|m| Value::Object(m.into_iter().collect()));
    prop_oneof![
        3 => rule.clone(),
        2 => vec(rule, 0..4).prop_map(Value::Array),
        1 => junk_value(),
        1 => (valid_policy(), 0usize..100, any::<bool>()).prop_map(|(v, d, b)| deep(v, d, b)),
    ]
    .boxed()
}

/// Criteria that must be refused, each on its own.
fn bad_criteria() -> Vec<Value> {
    vec![
        json!({"emial": "a@b.c"}),
        json!({"foo_bar": true}),
        json!({"device": {"is": "x"}}),
        json!({"email/x": "a"}),
        json!({"claim": "x"}),
        json!({"claim/": "x"}),
        json!({"email": {"like": "x"}}),
        json!({"email": {"in": "x"}}),
        json!({"email": {"not_in": [["x"]]}}),
        json!({"email": ["a", "b"]}),
        json!({"email": {}}),
        json!({"email": null}),
        json!({"http_path": {"is": {"a": 1}}}),
        json!({"groups": {"has": ["a"]}}),
        json!({"groups": {"contains": "a"}}),
        json!({"groups": null}),
        json!({"claim/x": {}}),
        json!({"source_ip": "10.0.0.0/33"}),
        json!({"source_ip": "999.1.1.1"}),
        json!({"source_ip": "::1/129"}),
        json!({"source_ip": ""}),
        json!({"source_ip": ["10.0.0.0/8", "nope"]}),
        json!({"source_ip": {"a": 1}}),
        json!({"source_ip": null}),
        json!({"client_certificate": "x"}),
        json!({"client_certificate": {"fingerprint": "abc"}}),
        json!({"client_certificate": {"fingerprint": FINGERPRINT.to_uppercase()}}),
        json!({"client_certificate": {"spki_hash": "not base64!"}}),
        json!({"client_certificate": {"spki_hash": "AAAA"}}),
        json!({"client_certificate": {"issuer": "x"}}),
        json!({"client_certificate": {"san_dns": {"bogus": "x"}}}),
        json!({"user": "a", "email": "b"}),
        json!({}),
        json!("accept"),
        json!(5),
        json!(["accept"]),
    ]
}

// ---------------------------------------------------------------------------------------------
// Random requests.

#[derive(Debug, Clone)]
struct Request {
    claims: Option<Map<String, Value>>,
    method: String,
    path: String,
    headers: HashMap<String, String>,
    source_ip: Option<IpAddr>,
    cert: ClientCertificate,
}

fn claim_value() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..30).prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        sample_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(
                select(vec!["team", "name", "roles", "b", "c", "d", "e", "org"]),
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
    .boxed()
}

fn claims() -> BoxedStrategy<Option<Map<String, Value>>> {
    let groups = prop_oneof![
        vec(select(vec!["admins", "eng", "users"]), 0..4).prop_map(|g| json!(g)),
        sample_string().prop_map(Value::String),
        claim_value(),
    ];
    let email = prop_oneof![
        select(vec![
            "alice@example.com",
            "bob@other.org",
            "dave",
            "",
            "a@b@c.com",
            "Alice@Example.COM"
        ])
        .prop_map(|e| Some(Value::String(e.to_string()))),
        sample_string().prop_map(|s| Some(Value::String(s))),
        claim_value().prop_map(Some),
        Just(None),
    ];
    let extra = btree_map(
        prop_oneof![
            select(vec![
                "department",
                "org",
                "https://example.com/roles",
                "age",
                "admin",
                "ids",
                "a",
                "nickname",
                "org.team",
            ])
            .prop_map(str::to_string),
            "[a-z./:]{1,10}",
        ],
        claim_value(),
        0..6,
    );
    let sub = prop_oneof![
        4 => select(vec!["alice", "bob", "Alice"]).prop_map(|s| Value::String(s.to_string())),
        1 => Just(Value::String(String::new())),
        1 => claim_value(),
    ];
    prop_oneof![
        1 => Just(None),
        3 => (sub, email, proptest::option::of(groups), extra).prop_map(|(sub, email, groups, extra)| {
            let mut m: Map<String, Value> = extra.into_iter().collect();
            m.insert("sub".into(), sub);
            if let Some(e) = email {
                m.insert("email".into(), e);
            }
            if let Some(g) = groups {
                m.insert("groups".into(), g);
            }
            Some(m)
        }),
    ]
    .boxed()
}

fn cert_state() -> BoxedStrategy<ClientCertificate> {
    let info = (
        select(vec![FINGERPRINT, OTHER_FINGERPRINT]),
        select(vec![SPKI, OTHER_SPKI]),
        vec(sample_string(), 0..3),
        vec(sample_string(), 0..3),
        vec(sample_string(), 0..3),
    )
        .prop_map(|(f, s, email, dns, uri)| {
            ClientCertificate::Valid(CertificateInfo {
                fingerprint: f.to_string(),
                spki_hash: s.to_string(),
                san_email: email,
                san_dns: dns,
                san_uri: uri,
            })
        });
    prop_oneof![
        Just(ClientCertificate::None),
        Just(ClientCertificate::Invalid),
        info
    ]
    .boxed()
}

fn request() -> BoxedStrategy<Request> {
    let method = prop_oneof![
        3 => select(vec!["GET", "POST", "OPTIONS", "options", "HEAD", "DELETE", ""]).prop_map(str::to_string),
        1 => "[A-Za-z]{1,10}",
    ];
    let path = prop_oneof![
        select(vec![
            "/",
            "/api/x.json",
            "/admin",
            "/admin/users",
            "/health"
        ])
        .prop_map(str::to_string),
        "/\\PC{0,20}",
    ];
    let headers = (
        proptest::option::of(sample_string()),
        proptest::option::of(sample_string()),
        proptest::option::of(("[a-z-]{1,12}", sample_string())),
    )
        .prop_map(|(origin, acrm, other)| {
            let mut h = HashMap::new();
            if let Some(o) = origin {
                h.insert("origin".to_string(), o);
            }
            if let Some(m) = acrm {
                h.insert("access-control-request-method".to_string(), m);
            }
            if let Some((k, v)) = other {
                h.insert(k, v);
            }
            h
        });
    let ip = prop_oneof![
        1 => Just(None),
        2 => any::<IpAddr>().prop_map(Some),
        2 => select(vec!["10.1.2.3", "192.0.2.7", "::1", "::ffff:10.9.9.9", "2001:db8::1"])
            .prop_map(|s| Some(s.parse::<IpAddr>().expect("ip"))),
    ];
    (claims(), method, path, headers, ip, cert_state())
        .prop_map(|(claims, method, path, headers, source_ip, cert)| Request {
            claims,
            method,
            path,
            headers,
            source_ip,
            cert,
        })
        .boxed()
}

fn identity(request: &Request) -> Option<Identity> {
    request.claims.clone().and_then(|c| identity_from(c).ok())
}

/// The traced evaluation (what `sluice check` prints), after checking that the untraced one
/// ext_authz runs decides the same.
fn eval(policy: &Policy, request: &Request, identity: Option<&Identity>) -> Evaluation {
    let headers: Vec<HeaderEntry> = request
        .headers
        .iter()
        .map(|(k, v)| HeaderEntry::new(k, v))
        .collect();
    let input = Input {
        identity,
        method: &request.method,
        path: &request.path,
        headers: RequestHeaders(&headers),
        source_ip: request.source_ip,
        client_certificate: request.cert.clone(),
    };
    let traced = evaluate_traced(policy, &input);
    let untraced = evaluate(policy, &input);
    assert!(
        untraced.trace.is_empty(),
        "ext_authz's evaluation kept a trace"
    );
    assert_eq!(
        traced.trace.len(),
        criteria_count(policy),
        "one trace line per criterion"
    );
    assert_eq!(
        Evaluation {
            trace: Vec::new(),
            ..traced.clone()
        },
        untraced,
        "tracing changed the decision"
    );
    traced
}

/// pomerium.md §4.1: certificate problems among the deny reasons, then sign-in, then deny,
/// then allow, else deny with the allow reasons.
fn expected_verdict(e: &Evaluation) -> Verdict {
    let cert = |r: &[&str]| {
        r.contains(&"client-certificate-required") || r.contains(&"invalid-client-certificate")
    };
    if cert(&e.deny_reasons) {
        Verdict::ClientCertificate {
            reasons: e.deny_reasons.clone(),
        }
    } else if e.allow_reasons.contains(&"user-unauthenticated")
        || e.deny_reasons.contains(&"user-unauthenticated")
    {
        Verdict::SignIn
    } else if e.deny {
        Verdict::Deny {
            reasons: e.deny_reasons.clone(),
        }
    } else if e.allow {
        Verdict::Allow {
            reasons: e.allow_reasons.clone(),
        }
    } else if cert(&e.allow_reasons) {
        // pomerium.md §4.1 step 6 and §4.4: denied by allow reasons that hold a
        // certificate problem is a 495 too.
        Verdict::ClientCertificate {
            reasons: e.allow_reasons.clone(),
        }
    } else {
        Verdict::Deny {
            reasons: e.allow_reasons.clone(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (a) Loading never panics, and explains itself.

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_text_loads_or_is_explained(text in any::<String>()) {
        load_checked(text.as_bytes())?;
    }

    #[test]
    fn arbitrary_bytes_load_or_are_explained(bytes in vec(any::<u8>(), 0..512)) {
        load_checked(&bytes)?;
    }

    #[test]
    fn yaml_ish_policy_text_loads_or_is_explained(
        tail in "[a-z_/:{}\\[\\],'\"&*!|>%@#0-9. \n-]{0,160}",
    ) {
        let text = format!("{HEADER}{}", route("t.example.com", &format!("    policy: {tail}\n")));
        load_checked(text.as_bytes())?;
    }

    #[test]
    fn wrong_policies_load_or_are_explained(policy in wrong_policy(), style in style()) {
        let text = format!("{HEADER}{}", route("t.example.com", &route_key("policy", &policy, style)));
        if let Some(Ok(model)) = load_checked(text.as_bytes())? {
            prop_assert_eq!(model.routes.len(), 1);
        }
    }

    #[test]
    fn wrong_shorthands_load_or_are_explained(
        values in vec((select(vec![
            "allowed_users", "allowed_domains", "allowed_idp_claims",
            "allow_public_unauthenticated_access", "allow_any_authenticated_user",
            "cors_allow_preflight", "policy",
        ]), wrong_data()), 1..4),
        style in style(),
    ) {
        // Later duplicates would only add a duplicate-key error; keep the first of each.
        let mut seen = std::collections::HashSet::new();
        let keys: String = values
            .iter()
            .filter(|(k, _)| seen.insert(*k))
            .map(|(k, v)| route_key(k, v, style))
            .collect();
        let text = format!("{HEADER}{}", route("t.example.com", &keys));
        load_checked(text.as_bytes())?;
    }

    #[test]
    fn a_bad_criterion_is_reported_on_its_line(
        good in vec(valid_criterion(), 0..5),
        bad in select(bad_criteria()),
        at in any::<proptest::sample::Index>(),
    ) {
        let mut criteria = good;
        let at = at.index(criteria.len() + 1);
        criteria.insert(at, bad.clone());
        let mut rest = String::from("    policy:\n      allow:\n        and:\n");
        for c in &criteria {
            rest.push_str(&format!("          - {}\n", scalar_text(c)));
        }
        let text = format!("{HEADER}{}", route("t.example.com", &rest));
        // HEADER (3 lines), from, to, policy, allow, and: the first criterion is on line 9.
        let line = 9 + at;
        let outcome = load(text.as_bytes());
        check_diagnostics(text.as_bytes(), &outcome)?;
        let Err(rejected) = outcome else {
            return Err(TestCaseError::fail(format!("{bad} was accepted:\n{text}")));
        };
        let errors: Vec<_> = rejected
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        for d in &errors {
            prop_assert_eq!(d.span.line as usize, line, "{} should be on line {}:\n{}", d, line, text);
            prop_assert!(d.path.starts_with(&format!("routes[0].policy.allow.and[{at}]")), "{} has the wrong key path", d);
        }
    }

    #[test]
    fn invalid_utf8_is_reported_where_it_starts(
        policy in valid_policy(),
        at in any::<proptest::sample::Index>(),
        byte in select(vec![0x80u8, 0xbf, 0xc3, 0xe2, 0xf0, 0xfe, 0xff]),
    ) {
        let text = format!("{HEADER}{}", route("t.example.com", &route_key("policy", &policy, Style::Block)));
        let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
        let offset = boundaries[at.index(boundaries.len())];
        let mut bytes = text.clone().into_bytes();
        bytes.insert(offset, byte);
        let outcome = load(&bytes);
        check_diagnostics(&bytes, &outcome)?;
        let Err(rejected) = outcome else {
            return Err(TestCaseError::fail("invalid UTF-8 was accepted"));
        };
        let line = text[..offset].matches('\n').count() + 1;
        prop_assert_eq!(rejected.diagnostics.len(), 1);
        prop_assert_eq!(rejected.diagnostics[0].span.line as usize, line);
        prop_assert!(rejected.diagnostics[0].message.contains("UTF-8"));
    }
}

// ---------------------------------------------------------------------------------------------
// (b) Valid policies load whole and evaluate any request.

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn valid_policies_load_whole_and_evaluate_any_request(
        policy in valid_policy(),
        style in style(),
        requests in vec(request(), 1..8),
    ) {
        let text = format!("{HEADER}{}", route("t.example.com", &route_key("policy", &policy, style)));
        let model = match load(text.as_bytes()) {
            Ok(m) => m,
            Err(rejected) => {
                let all: Vec<String> = rejected.diagnostics.iter().map(ToString::to_string).collect();
                return Err(TestCaseError::fail(format!("a valid policy was rejected:\n{}\n{text}", all.join("\n"))));
            }
        };
        prop_assert_eq!(model.routes.len(), 1);
        let compiled = &model.routes[0].policy;
        let (rules, criteria) = shape(&policy);
        prop_assert_eq!(compiled.rules.len(), rules, "rules of {}", text);
        prop_assert_eq!(criteria_count(compiled), criteria, "criteria of {}", text);

        for request in &requests {
            let identity = identity(request);
            let evaluation = eval(compiled, request, identity.as_ref());
            prop_assert_eq!(&evaluation, &eval(compiled, request, identity.as_ref()), "not deterministic");
            let verdict = evaluation.verdict();
            prop_assert_eq!(&verdict, &expected_verdict(&evaluation));
            if identity.is_some() {
                prop_assert_ne!(&verdict, &Verdict::SignIn, "a signed-in user was asked to sign in");
            }
            if matches!(request.cert, ClientCertificate::Valid(_)) {
                prop_assert!(!matches!(verdict, Verdict::ClientCertificate { .. }), "a valid certificate gave 495");
            }
            for t in &evaluation.trace {
                let session = SESSION_CRITERIA.contains(&t.criterion.as_str()) || t.criterion.starts_with("claim/");
                if session && identity.is_none() {
                    prop_assert!(!t.value && t.reason == ["user-unauthenticated"], "{:?} without a session", t);
                }
                if identity.is_some() {
                    prop_assert!(!t.reason.contains(&"user-unauthenticated"), "{:?} with a session", t);
                }
            }
            if let Verdict::Allow { .. } = verdict {
                prop_assert!(evaluation.allow && !evaluation.deny);
            }
        }
    }

    #[test]
    fn operators_keep_their_algebra(
        criteria in vec(valid_criterion(), 1..5),
        requests in vec(request(), 1..6),
    ) {
        let list = Value::Array(criteria.clone());
        let routes: String = [
            json!({"allow": {"or": list}}),
            json!({"allow": {"not": list}}),
            json!({"allow": {"and": list}}),
            json!({"allow": {"nor": list}}),
            json!([{"allow": {"or": [{"accept": true}]}}, {"deny": {"or": list}}]),
        ]
        .iter()
        .enumerate()
        .map(|(i, p)| route(&format!("r{i}.example.com"), &route_key("policy", p, Style::Flow)))
        .collect();
        let text = format!("{HEADER}{routes}");
        let model = match load(text.as_bytes()) {
            Ok(m) => m,
            Err(rejected) => {
                let all: Vec<String> = rejected.diagnostics.iter().map(ToString::to_string).collect();
                return Err(TestCaseError::fail(format!("rejected:\n{}\n{text}", all.join("\n"))));
            }
        };
        prop_assert_eq!(model.routes.len(), 5);
        for request in &requests {
            let identity = identity(request);
            let e: Vec<Evaluation> = model
                .routes
                .iter()
                .map(|r| eval(&r.policy, request, identity.as_ref()))
                .collect();
            let (or, not, and, nor) = (e[0].allow, e[1].allow, e[2].allow, e[3].allow);
            prop_assert_eq!(or, !not, "`not` is NOR: {}", text);
            prop_assert_eq!(and, !nor, "`nor` is NAND: {}", text);
            prop_assert!(!and || or, "`and` implies `or`: {}", text);
            if criteria.len() == 1 {
                prop_assert_eq!(and, or);
            }
            prop_assert_eq!(e[4].deny, or, "a deny `or` decides like an allow `or`");
            prop_assert!(e[4].allow);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scalar policies, through the binary: they once made the parser recurse until the stack
// overflowed; a child process keeps such a crash from taking the test binary down.

/// `policy: allow` and friends are reported ("expected a policy ...", exit 78), not a crash.
#[test]
fn scalar_policies_are_diagnostics_not_crashes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut problems = Vec::new();
    for (i, policy) in [
        "allow",
        "5",
        "true",
        "'allow'",
        r#""\"accept\"""#,
        "'\"x\"'",
    ]
    .iter()
    .enumerate()
    {
        let text = format!(
            "{HEADER}{}",
            route("t.example.com", &format!("    policy: {policy}\n"))
        );
        let file = dir.path().join(format!("scalar-{i}.yaml"));
        std::fs::write(&file, &text).expect("write config");
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["validate", "-c"])
            .arg(&file)
            .output()
            .expect("run sluice");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = format!("{}:6:", file.display());
        if out.status.code() != Some(78)
            || !stderr.contains(&line)
            || !stderr.contains("error: routes[0].policy")
        {
            problems.push(format!(
                "  `policy: {policy}`: {} ({})",
                out.status,
                stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("")
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "a scalar route policy should be an error on line 6 and exit 78:\n{}",
        problems.join("\n")
    );
}
