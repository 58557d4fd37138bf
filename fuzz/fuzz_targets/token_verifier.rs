//! Any text where a client's credentials go, through every reader of them: the IdP bearer-token
//! verifier (`authz::tokens::verify`, against a local identity provider serving an ES256,
//! ES384, RS256 and EdDSA key), sealed session cookies and values, the chunked cookie header,
//! signed sign-in URLs, and a token's claims read as an identity. Each refuses cleanly or
//! reads; never a panic.
//!
//! Forged input never gets past a signature or an AEAD tag, so text that is a JSON object is
//! also taken as claims and signed with the IdP's ES256 key (an `iss` of `ISSUER` becomes the
//! local IdP's URL) and sealed as a session: that reaches claim validation and the session
//! decoder. Signed or sealed, what comes out is what went in.
#![no_main]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};
use sluice::authn::keys::Key;
use sluice::authn::session::{self, SessionData};
use sluice::authn::{cookies, identity, seal, signed_url};
use sluice::authz::jwks::Provider;
use sluice::authz::signer::Signer;
use sluice::authz::tokens;

const CLIENT_ID: &str = "sluice-fuzz";
const COOKIE: &str = "_pomerium";
/// What `SessionData::seal` binds a session cookie named `_pomerium` to (checked at start-up).
const SESSION_PURPOSE: &[u8] = b"session\0_pomerium";
const KEY: Key = Key([7; 32]);
/// Within the lifetime of signed URLs issued at the same instant; any fixed time would do.
const NOW: u64 = 1_800_000_000;

/// Public halves of keys nobody here signs with: their verifiers run on forged signatures.
const OTHER_KEYS: &str = include_str!("../other-keys.json");

struct Idp {
    runtime: tokio::runtime::Runtime,
    provider: Provider,
    issuer: String,
    signer: Signer,
}

/// Serves OpenID discovery and the JWKS on 127.0.0.1 from a plain thread, one connection at a
/// time (the provider fetches once at start-up, then at most every 50 minutes).
fn serve(listener: TcpListener, discovery: String, jwks: String) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut request_line = String::new();
        let mut reader = BufReader::new(&stream);
        if reader.read_line(&mut request_line).is_err() {
            continue;
        }
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(n) if n > 2 => continue,
                _ => break,
            }
        }
        let body = if request_line.contains("/.well-known/openid-configuration") {
            &discovery
        } else {
            &jwks
        };
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
    }
}

static IDP: LazyLock<Idp> = LazyLock::new(|| {
    let pem = base64::engine::general_purpose::STANDARD
        .decode(
            include_str!("../../tests/testdata/certs/signing-key.b64")
                .split_whitespace()
                .collect::<String>(),
        )
        .expect("the test signing key is base64");
    let signer = Signer::from_pem(std::str::from_utf8(&pem).expect("a PEM is text"))
        .expect("the test signing key is a P-256 key");
    let mut keys: Vec<Value> = serde_json::from_str(OTHER_KEYS).expect("other-keys.json is a list");
    keys.insert(0, signer.jwks()["keys"][0].clone());

    let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
    let issuer = format!("http://{}", listener.local_addr().expect("bound"));
    let discovery = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks")}).to_string();
    let jwks = json!({ "keys": keys }).to_string();
    std::thread::spawn(move || serve(listener, discovery, jwks));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("an HTTP client");
    // Keys are refetched after an hour whatever happens; a short least time between fetches
    // would let tokens with unknown key ids make the run depend on the clock.
    let provider = Provider::with_min_refetch(&issuer, http, Duration::from_secs(3000));
    runtime
        .block_on(provider.key(Some(&signer.kid)))
        .expect("the local identity provider serves its keys");

    // The purpose string above is a copy of a private detail: fail loudly if it drifts, rather
    // than fuzz a decoder that can never open anything.
    let probe = SessionData {
        sid: "s".into(),
        id_token: None,
        extra_claims: Map::new(),
        access_token: None,
        refresh_token: None,
        tokens_expire: None,
        issued: 0,
        expires: 0,
    };
    seal::open::<Value>(&KEY, SESSION_PURPOSE, &probe.seal(&KEY, COOKIE))
        .expect("SESSION_PURPOSE is the purpose SessionData::seal uses");

    Idp {
        runtime,
        provider,
        issuer,
        signer,
    }
});

fn verify(idp: &Idp, token: &str) -> Option<Map<String, Value>> {
    idp.runtime
        .block_on(tokens::verify(token, &idp.provider, CLIENT_ID))
        .ok()
}

/// Text as the credentials a client sends.
fn untrusted(idp: &Idp, text: &str) {
    if let Some(claims) = verify(idp, text) {
        let _ = tokens::identity_from(claims);
    }
    if let Ok(data) = SessionData::open(&KEY, COOKIE, text) {
        let _ = identity::session_of(&data);
    }
    let _ = seal::open::<Value>(&KEY, b"fuzz", text);
    let _ = cookies::get(text, COOKIE);
    let _ = cookies::names(text).count();
    if let Some(value) = cookies::get_chunked(text, COOKIE) {
        let _ = SessionData::open(&KEY, COOKIE, &value);
    }
    let _ = signed_url::verify(&KEY, "a.example.com", "/.pomerium/sign_in", text, NOW);
    if let Some(claims) = session::unverified_claims(text) {
        let _ = tokens::identity_from(claims);
    }
}

/// Text as what sluice itself signs or seals, read back.
fn round_trips(idp: &Idp, text: &str) {
    // Signing appends these, and verifying reads the first of each: a URL that holds them
    // already is not one sluice signs.
    let ours = ["pomerium_issued", "pomerium_expiry", "pomerium_signature"];
    if let Ok(mut url) = url::Url::parse(&format!("https://a.example.com/.pomerium/sign_in?{text}"))
        && !url.query_pairs().any(|(k, _)| ours.contains(&k.as_ref()))
    {
        signed_url::sign(&mut url, &KEY, NOW);
        let verified = signed_url::verify(
            &KEY,
            url.host_str().unwrap_or(""),
            url.path(),
            url.query().unwrap_or(""),
            NOW,
        );
        assert!(
            verified.is_ok(),
            "a URL sluice signed does not verify: {url}"
        );
    }

    let Ok(Value::Object(mut claims)) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if claims.get("iss").and_then(Value::as_str) == Some("ISSUER") {
        claims.insert("iss".into(), Value::String(idp.issuer.clone()));
    }
    let token = idp.signer.sign(&claims);
    if let Some(verified) = verify(idp, &token) {
        assert_eq!(
            verified, claims,
            "verified claims differ from the signed ones"
        );
        let _ = tokens::identity_from(verified);
    }

    let sealed = seal::seal(&KEY, SESSION_PURPOSE, &claims);
    if let Ok(data) = SessionData::open(&KEY, COOKIE, &sealed) {
        let _ = identity::session_of(&data);
        let again = SessionData::open(&KEY, COOKIE, &data.seal(&KEY, COOKIE));
        assert_eq!(
            again.as_ref(),
            Ok(&data),
            "a resealed session opens differently"
        );
    }
}

fuzz_target!(|bytes: &[u8]| {
    let idp = &*IDP;
    let text = String::from_utf8_lossy(bytes);
    untrusted(idp, &text);
    round_trips(idp, &text);
});
