//! Broken configs: each case asserts the line, the key path and the message of every problem.

use std::path::Path;

use sluice::document::{Diagnostic, Severity};

/// One expected diagnostic: line, key path, and a part of the message.
type Expect = (usize, &'static str, &'static str);

fn diagnostics(text: &[u8]) -> Vec<Diagnostic> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/configs/inline.yaml");
    match sluice::config::load_bytes(&path, text) {
        Ok(m) => panic!(
            "expected the config to be rejected; it gave {} route(s)",
            m.routes.len()
        ),
        Err(r) => r
            .diagnostics
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect(),
    }
}

fn assert_errors(name: &str, text: &[u8], expected: &[Expect]) {
    let got = diagnostics(text);
    let shown = got
        .iter()
        .map(|d| format!("  {d}"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        got.len(),
        expected.len(),
        "{name}: expected {} error(s), got:\n{shown}",
        expected.len()
    );
    for ((line, path, message), d) in expected.iter().zip(&got) {
        assert_eq!(d.span.line as usize, *line, "{name}: line of `{d}`");
        assert_eq!(d.path, *path, "{name}: key path of `{d}`");
        assert!(
            d.message.contains(message),
            "{name}: `{}` should contain `{message}`",
            d.message
        );
        assert!(d.span.col >= 1, "{name}: column of `{d}`");
    }
}

const INSECURE: &str = "insecure_server: true\n";

fn with_route(route: &str) -> Vec<u8> {
    format!("{INSECURE}routes:\n{route}").into_bytes()
}

#[test]
fn broken_configs_report_path_line_and_message() {
    let cases: Vec<(&str, Vec<u8>, Vec<Expect>)> = vec![
        (
            "empty file",
            b"".to_vec(),
            vec![(1, "", "the config file is empty")],
        ),
        (
            "only comments",
            b"# nothing here\n".to_vec(),
            vec![(1, "", "the config file is empty")],
        ),
        (
            "binary garbage",
            vec![0x7f, b'E', b'L', b'F', 0, 0, 0xff, 0xfe, b'\n'],
            vec![(1, "", "not UTF-8")],
        ),
        (
            "control characters",
            b"routes: []\n\x00\x01\x02".to_vec(),
            vec![(2, "", "control characters")],
        ),
        (
            "yaml syntax error",
            b"routes:\n  - from: [unclosed\n".to_vec(),
            vec![(3, "", "YAML syntax error")],
        ),
        (
            "bad indentation",
            b"address: :443\n  insecure_server: true\n".to_vec(),
            vec![(2, "", "YAML syntax error")],
        ),
        (
            "two documents",
            b"insecure_server: true\n---\nroutes: []\n".to_vec(),
            vec![(2, "", "more than one YAML document")],
        ),
        (
            "top level list",
            b"- from: https://a\n".to_vec(),
            vec![(1, "", "expected a mapping")],
        ),
        (
            "unknown top-level key",
            format!("{INSECURE}routs: []\n").into_bytes(),
            vec![(2, "routs", "did you mean `routes`?")],
        ),
        (
            "route key at top level",
            format!("{INSECURE}from: https://a.example.com\n").into_bytes(),
            vec![(2, "from", "belongs inside an entry of `routes`")],
        ),
        (
            "global key in a route",
            with_route("  - from: https://a.example.com\n    to: http://b\n    timeout_read: 5s\n"),
            vec![(5, "routes[0].timeout_read", "belongs at the top level")],
        ),
        (
            "unsupported pomerium key",
            format!("{INSECURE}autocert: true\n").into_bytes(),
            vec![(2, "autocert", "sluice does not support")],
        ),
        (
            "duplicate key",
            format!("{INSECURE}address: :80\naddress: :81\n").into_bytes(),
            vec![(3, "address", "appears more than once")],
        ),
        (
            "wrong type bool",
            b"insecure_server: maybe\n".to_vec(),
            vec![(1, "insecure_server", "expected true or false")],
        ),
        (
            "yaml 1.1 bool",
            b"insecure_server: yes\n".to_vec(),
            vec![(1, "insecure_server", "YAML 1.1 words")],
        ),
        (
            "wrong type list",
            format!("{INSECURE}routes: https://a.example.com\n").into_bytes(),
            vec![(2, "routes", "expected a list, found a string")],
        ),
        (
            "wrong type map",
            with_route("  - https://a.example.com\n"),
            vec![(3, "routes[0]", "expected a mapping")],
        ),
        (
            "bad duration",
            format!("{INSECURE}timeout_idle: 5 minutes\n").into_bytes(),
            vec![(2, "timeout_idle", "not a valid duration")],
        ),
        (
            "duration without unit",
            with_route("  - from: https://a.example.com\n    to: http://b\n    timeout: 30\n"),
            vec![(5, "routes[0].timeout", "needs a unit")],
        ),
        (
            "negative duration",
            format!("{INSECURE}timeout_read: -1s\n").into_bytes(),
            vec![(2, "timeout_read", "negative")],
        ),
        (
            "from without scheme",
            with_route("  - from: a.example.com\n    to: http://b\n"),
            vec![(3, "routes[0].from", "does not contain a valid scheme")],
        ),
        (
            "from with path",
            with_route("  - from: https://a.example.com/app\n    to: http://b\n"),
            vec![(3, "routes[0].from", "contains a path")],
        ),
        (
            "to without host",
            with_route("  - from: https://a.example.com\n    to: http://\n"),
            vec![(4, "routes[0].to", "not a valid URL")],
        ),
        (
            "weight zero",
            with_route(
                "  - from: https://a.example.com\n    to:\n      - http://b,1\n      - http://c,0\n",
            ),
            vec![(
                6,
                "routes[0].to[1]",
                "zero load balancing weight not permitted",
            )],
        ),
        (
            "mixed weights",
            with_route(
                "  - from: https://a.example.com\n    to:\n      - http://b,1\n      - http://c\n",
            ),
            vec![(5, "routes[0].to", "either no weights should be provided")],
        ),
        (
            "weight split by a flow list",
            with_route("  - from: https://a.example.com\n    to: [http://b,1, http://c,2]\n"),
            vec![
                (4, "routes[0].to[1]", "looks like a weight that YAML split"),
                (4, "routes[0].to[3]", "looks like a weight"),
            ],
        ),
        (
            "no destination",
            with_route("  - from: https://a.example.com\n"),
            vec![(3, "routes[0]", "either `to` or `redirect` or `response`")],
        ),
        (
            "two destinations",
            with_route(
                "  - from: https://a.example.com\n    to: http://b\n    response: {status: 200}\n",
            ),
            vec![(
                5,
                "routes[0].response",
                "only one of `to`, `redirect` or `response`",
            )],
        ),
        (
            "bad redirect code",
            with_route("  - from: https://a.example.com\n    redirect: {response_code: 305}\n"),
            vec![(
                4,
                "routes[0].redirect.response_code",
                "unsupported redirect response code 305",
            )],
        ),
        (
            "prefix and regex rewrite",
            with_route(
                "  - from: https://a.example.com\n    to: http://b\n    prefix_rewrite: /x\n    regex_rewrite_pattern: ^/y\n",
            ),
            vec![(
                6,
                "routes[0].regex_rewrite_pattern",
                "only prefix_rewrite or regex_rewrite_pattern",
            )],
        ),
        (
            "bad regex",
            with_route(
                "  - from: https://a.example.com\n    regex: '^/(unclosed'\n    to: http://b\n",
            ),
            vec![(4, "routes[0].regex", "not a valid regular expression")],
        ),
        (
            "regex Envoy's RE2 refuses",
            with_route(
                "  - from: https://a.example.com\n    regex: '^/a{1001}$'\n    to: http://b\n",
            ),
            vec![(
                4,
                "routes[0].regex",
                "more than Envoy's regex engine (RE2) allows (1000)",
            )],
        ),
        (
            "Host in set_response_headers",
            with_route(
                "  - from: https://a.example.com\n    to: http://b\n    set_response_headers:\n      Host: x\n",
            ),
            vec![(
                6,
                "routes[0].set_response_headers.Host",
                "set the `Host` header",
            )],
        ),
        (
            "prefix without slash",
            with_route("  - from: https://a.example.com\n    prefix: api\n    to: http://b\n"),
            vec![(4, "routes[0].prefix", "must start with `/`")],
        ),
        (
            "depends_on limit",
            with_route(
                "  - from: https://a.example.com\n    to: http://b\n    depends_on: [a, b, c, d, e, f]\n",
            ),
            vec![(5, "routes[0].depends_on", "limited to 5")],
        ),
        (
            "public with whitelist",
            with_route(
                "  - from: https://a.example.com\n    to: http://b\n    allow_public_unauthenticated_access: true\n    allowed_users: [a@b.c]\n",
            ),
            vec![(
                5,
                "routes[0].allow_public_unauthenticated_access",
                "marked as public but contains whitelists",
            )],
        ),
        (
            "unknown criterion",
            with_route(
                "  - from: https://a.example.com\n    to: http://b\n    policy:\n      allow:\n        or:\n          - emails: a@b.c\n",
            ),
            vec![(
                8,
                "routes[0].policy.allow.or[0].emails",
                "unknown policy criterion: emails",
            )],
        ),
        (
            "read not below write",
            format!("{INSECURE}timeout_read: 30s\ntimeout_write: 30s\n").into_bytes(),
            vec![(
                2,
                "timeout_read",
                "timeout_read (30s) must be less than timeout_write (30s)",
            )],
        ),
        (
            "missing certificate file",
            b"certificates:\n  - cert: /nonexistent/cert.pem\n    key: /nonexistent/key.pem\n"
                .to_vec(),
            vec![
                (2, "certificates[0].cert", "no such file"),
                (3, "certificates[0].key", "no such file"),
            ],
        ),
        (
            "autocert says why",
            format!("{INSECURE}autocert_email: a@example.com\n").into_bytes(),
            vec![(2, "autocert_email", "sluice does no ACME")],
        ),
        (
            "databroker says why",
            format!("{INSECURE}databroker_storage_type: postgres\n").into_bytes(),
            vec![(2, "databroker_storage_type", "sessions live in the cookie")],
        ),
        (
            "mcp says why",
            with_route("  - from: https://a.example.com\n    to: http://b\n    mcp: {}\n"),
            vec![(5, "routes[0].mcp", "does not implement MCP")],
        ),
        (
            "inline and file forms at once",
            format!("{INSECURE}certificate_authority: Zm9v\ncertificate_authority_file: /etc/ca.pem\n").into_bytes(),
            vec![(3, "certificate_authority_file", "set either certificate_authority or certificate_authority_file, not both")],
        ),
        (
            "inline not base64",
            format!("{INSECURE}certificate_authority: \"not base64!\"\n").into_bytes(),
            vec![(2, "certificate_authority", "is not base64")],
        ),
        (
            "inline not pem",
            // "hello world"
            format!("{INSECURE}certificate_authority: aGVsbG8gd29ybGQ=\n").into_bytes(),
            vec![(2, "certificate_authority", "not to a PEM certificate")],
        ),
        (
            "inline certificate without its key",
            b"certificate: aGVsbG8=\n".to_vec(),
            vec![(1, "certificate", "certificate and certificate_key go together")],
        ),
        (
            "route client key without cert",
            with_route("  - from: https://a.example.com\n    to: https://b\n    tls_client_key: aGVsbG8=\n"),
            vec![(5, "routes[0]", "client certificate key and cert both must be non-empty")],
        ),
        (
            "route client CA file missing",
            with_route("  - from: https://a.example.com\n    to: http://b\n    tls_downstream_client_ca_file: /nonexistent/ca.pem\n"),
            vec![(5, "routes[0].tls_downstream_client_ca_file", "no such file")],
        ),
        (
            "bad mtls enforcement and SAN type",
            b"downstream_mtls:\n  ca_file: /nonexistent/ca.pem\n  enforcement: strict\n  match_subject_alt_names:\n    - phone: '1'\n".to_vec(),
            vec![
                (2, "downstream_mtls.ca_file", "no such file"),
                (3, "downstream_mtls.enforcement", "is not an mTLS enforcement mode"),
                (5, "downstream_mtls.match_subject_alt_names[0]", "unknown SAN type"),
            ],
        ),
        (
            "bad cookie same site",
            format!("{INSECURE}cookie_same_site: sometimes\n").into_bytes(),
            vec![(2, "cookie_same_site", "invalid cookie_same_site")],
        ),
        (
            "bad signout redirect",
            format!("{INSECURE}signout_redirect_url: /goodbye\n").into_bytes(),
            vec![(2, "signout_redirect_url", "not an absolute http(s) URL")],
        ),
        (
            "short shared secret",
            format!("{INSECURE}shared_secret: c2hvcnQ=\n").into_bytes(),
            vec![(2, "shared_secret", "decodes to 5 bytes")],
        ),
        (
            "bad address",
            format!("{INSECURE}address: example.com:443\n").into_bytes(),
            vec![(2, "address", "listen on IP addresses")],
        ),
        (
            "bad codec",
            format!("{INSECURE}codec_type: http4\n").into_bytes(),
            vec![(2, "codec_type", "use auto, http1, http2 or http3")],
        ),
        (
            "duplicate routes",
            with_route(
                "  - from: https://a.example.com\n    to: http://b\n  - from: https://a.example.com\n    to: http://b\n",
            ),
            vec![(5, "routes[1]", "is not unique")],
        ),
        (
            "drain time in fractions of a second",
            format!("{INSECURE}sluice_drain_time: 1.5s\n").into_bytes(),
            vec![(2, "sluice_drain_time", "whole seconds")],
        ),
        (
            "bad stream probe mode",
            format!("{INSECURE}sluice_stream_probe: private\n").into_bytes(),
            vec![(2, "sluice_stream_probe", "use policy")],
        ),
        (
            "bad http2 drain timeout",
            format!("{INSECURE}sluice_http2_drain_timeout: soon\n").into_bytes(),
            vec![(2, "sluice_http2_drain_timeout", "")],
        ),
    ];
    assert!(cases.len() >= 20);
    for (name, text, expected) in &cases {
        assert_errors(name, text, expected);
    }
}

#[test]
fn every_problem_is_reported_in_one_run() {
    let text = with_route(
        "  - from: a.example.com\n    to: http://b,0\n    allowed_user: [x]\n  - from: https://c.example.com\n    redirect: {response_code: 999}\n    to: http://d\n",
    );
    let got = diagnostics(&text);
    let paths: Vec<&str> = got.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "routes[0].from",
            "routes[0].to",
            "routes[0].allowed_user",
            "routes[1].redirect",
            "routes[1].redirect.response_code"
        ],
        "{got:#?}"
    );
}

#[test]
fn both_timeouts_disabled_is_valid() {
    let path = Path::new("inline.yaml");
    let model = sluice::config::load_bytes(
        path,
        b"insecure_server: true\ntimeout_read: 0s\ntimeout_write: 0s\nroutes: []\n",
    )
    .expect("0s/0s is valid");
    assert!(
        model.global.timeout_read.value.is_zero() && model.global.timeout_write.value.is_zero()
    );
    assert!(
        model
            .warnings
            .iter()
            .all(|w| !w.message.contains("must be less than"))
    );
}

#[test]
fn warnings_do_not_reject() {
    let path = Path::new("inline.yaml");
    let model = sluice::config::load_bytes(
        path,
        b"insecure_server: true\ntimeout_write: 1m\nroutes:\n  - from: http://a.example.com\n    to: http://b\n    timeout: 5m\n    set_response_headers:\n      X-Accel-Buffering: \"no\"\n",
    )
    .expect("warnings only");
    let messages: Vec<String> = model.warnings.iter().map(ToString::to_string).collect();
    assert!(messages.iter().any(|m| m.contains("inline.yaml:6:14: warning: routes[0].timeout: this route timeout (5m0s) is longer than timeout_write (1m0s)")), "{messages:#?}");
    assert!(
        messages.iter().any(
            |m| m.contains("routes[0].set_response_headers.X-Accel-Buffering")
                && m.contains("sluice never buffers responses")
        ),
        "{messages:#?}"
    );
}

#[test]
fn secrets_never_appear_in_diagnostics() {
    let secret = "aGVsbG8tdGhpcy1pcy1ub3QtMzItYnl0ZXM=";
    let text = format!(
        "{INSECURE}shared_secret: {secret}\ncookie_secret: [{secret}]\nidp_client_secret: {{nested: {secret}}}\nsigning_key: {secret}\n"
    );
    let got = sluice::config::load_bytes(Path::new("inline.yaml"), text.as_bytes()).unwrap_err();
    assert!(got.diagnostics.len() >= 4, "{:#?}", got.diagnostics);
    for d in &got.diagnostics {
        assert!(!d.to_string().contains(secret), "secret leaked in `{d}`");
        assert!(
            !d.to_string().contains("hello"),
            "decoded secret leaked in `{d}`"
        );
    }
}
