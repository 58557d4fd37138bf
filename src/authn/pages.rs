//! The few pages sign-in shows: the user page, "signed out", the sign-out confirmation and
//! errors. Everything shown is escaped; no secret or token is ever on a page.

use serde_json::{Map, Value};

use crate::authz::respond::escape;

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <style>body{{font-family:system-ui,sans-serif;max-width:44rem;margin:3rem auto;color:#222;padding:0 1rem}}\
         code,td{{font-family:ui-monospace,monospace}}td{{padding:.2em .6em;border-bottom:1px solid #eee;vertical-align:top}}\
         .button{{display:inline-block;padding:.5em 1em;background:#2d5be3;color:#fff;border-radius:4px;text-decoration:none}}</style>\
         </head><body>{body}</body></html>",
        title = escape(title)
    )
}

/// Claims the user page leaves out: they say nothing about the user.
const PLUMBING_CLAIMS: &[&str] = &[
    "aud",
    "azp",
    "at_hash",
    "c_hash",
    "nonce",
    "sid",
    "iat",
    "auth_time",
];

fn claim_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Who is signed in: identity, groups and claims, and a sign-out button.
pub fn user(claims: &Map<String, Value>, sign_out_url: &str) -> String {
    let get = |k: &str| claims.get(k).map(claim_text).unwrap_or_default();
    let groups = match claims.get("groups") {
        Some(Value::Array(items)) => items.iter().map(claim_text).collect::<Vec<_>>().join(", "),
        Some(other) => claim_text(other),
        None => String::new(),
    };
    let rows: String = claims
        .iter()
        .filter(|(k, _)| !PLUMBING_CLAIMS.contains(&k.as_str()))
        .map(|(k, v)| {
            let mut text = claim_text(v);
            if text.len() > 200 {
                text.truncate(text.floor_char_boundary(200));
                text.push('…');
            }
            format!("<tr><td>{}</td><td>{}</td></tr>", escape(k), escape(&text))
        })
        .collect();
    page(
        "Signed in",
        &format!(
            "<h1>Signed in</h1><p id=\"user\">Signed in as <strong id=\"email\">{email}</strong> \
             (user <code id=\"sub\">{sub}</code>)</p><p>Groups: <span id=\"groups\">{groups}</span></p>\
             <h2>Claims</h2><table>{rows}</table><p><a class=\"button\" id=\"sign-out\" href=\"{out}\">Sign out</a></p>",
            email = escape(&get("email")),
            sub = escape(&get("sub")),
            groups = escape(&groups),
            out = escape(sign_out_url),
        ),
    )
}

pub fn signed_out() -> String {
    page(
        "Signed out",
        "<h1>Signed out</h1><p>You have been signed out.</p>",
    )
}

/// Asked when a sign-out link is not one sluice signed (so an `<img>` tag on another site
/// cannot sign anyone out).
pub fn confirm_sign_out(sign_out_url: &str) -> String {
    page(
        "Sign out?",
        &format!(
            "<h1>Sign out?</h1><p>Do you want to sign out?</p>\
             <p><a class=\"button\" id=\"confirm\" href=\"{}\">Sign out</a></p>",
            escape(sign_out_url)
        ),
    )
}

pub fn error(status: u16, reason: &str) -> String {
    page(
        &format!("{status}"),
        &format!(
            "<h1>{status}</h1><p>Sign-in could not go on: <code id=\"reason\">{}</code></p>",
            escape(reason)
        ),
    )
}
