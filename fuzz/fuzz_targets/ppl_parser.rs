//! Any text as a route's `policy` (Pomerium Policy Language), straight into the PPL parser:
//! rules or diagnostics, never a panic. The same text given as a string (`policy: "..."`, as
//! Pomerium accepts) gives the same rules; whatever parsed evaluates any request without a
//! panic.
#![no_main]

use std::net::IpAddr;
use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use sluice::document::decode::KeyPath;
use sluice::document::diag::{Diagnostics, Span};
use sluice::document::yaml::{self, Node, NodeKind, Scalar};
use sluice::policy::eval::{
    CertificateInfo, ClientCertificate, Identity, Input, evaluate, evaluate_traced,
};
use sluice::policy::{Policy, Rule, parse_policy};
use sluice::request_headers::{HeaderEntry, RequestHeaders};

fn parse(node: &Node) -> (Vec<Rule>, usize) {
    let mut diags = Diagnostics::new(Path::new("fuzz.yaml"));
    let rules = parse_policy(node, &KeyPath::root().key("policy"), &mut diags);
    (rules, diags.error_count())
}

static IDENTITY: LazyLock<Identity> = LazyLock::new(|| {
    let claims = json!({
        "sub": "u1", "email": "alice@example.com", "groups": ["eng", "admins"],
        "https://example.com/roles": ["a", 1, true], "nested": {"team": {"name": "x"}},
    });
    Identity {
        user_id: "u1".into(),
        email: Some("alice@example.com".into()),
        groups: vec!["eng".into(), "admins".into()],
        claims: claims.as_object().cloned().unwrap_or_default(),
    }
});

static HEADERS: LazyLock<Vec<HeaderEntry>> = LazyLock::new(|| {
    vec![
        HeaderEntry::new("origin", "https://b.example.com"),
        HeaderEntry::new("access-control-request-method", "GET"),
    ]
});

/// Requests unlike each other: anonymous, signed in, a CORS preflight with a certificate.
fn inputs() -> [Input<'static>; 3] {
    let ip = |s: &str| s.parse::<IpAddr>().ok();
    [
        Input {
            method: "GET",
            path: "/",
            ..Input::default()
        },
        Input {
            identity: Some(&IDENTITY),
            method: "POST",
            path: "/admin/x",
            source_ip: ip("10.1.2.3"),
            client_certificate: ClientCertificate::Invalid,
            ..Input::default()
        },
        Input {
            identity: Some(&IDENTITY),
            method: "OPTIONS",
            path: "/api",
            headers: RequestHeaders(&HEADERS),
            source_ip: ip("2001:db8::1"),
            client_certificate: ClientCertificate::Valid(CertificateInfo {
                fingerprint: "ab".repeat(32),
                spki_hash: "c3BraQ==".into(),
                san_email: vec!["alice@example.com".into()],
                san_dns: vec!["a.example.com".into()],
                san_uri: vec!["spiffe://example.com/a".into()],
            }),
        },
    ]
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(Some(node)) = yaml::parse(text) else {
        return;
    };
    let (rules, errors) = parse(&node);
    if matches!(node.kind, NodeKind::Seq(_) | NodeKind::Map(_)) {
        let quoted = Node {
            span: Span::new(1, 1),
            kind: NodeKind::Scalar(Scalar {
                text: text.to_string(),
                plain: false,
            }),
        };
        let (from_string, string_errors) = parse(&quoted);
        assert_eq!(
            from_string, rules,
            "the policy as a string parses differently"
        );
        assert_eq!(
            string_errors, errors,
            "the policy as a string has other errors"
        );
    }
    let policy = Policy { rules };
    let _ = policy.always_allows();
    for input in inputs() {
        let decided = evaluate(&policy, &input).verdict();
        // `sluice check` traces the same evaluation; it must decide alike.
        assert_eq!(evaluate_traced(&policy, &input).verdict(), decided);
    }
});
