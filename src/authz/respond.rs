//! Decisions as Envoy CheckResponses: allow (with headers), sign-in (302 for browsers, 401
//! otherwise), deny (403/495) and unknown route (404), as HTML or JSON by `Accept`. Internal
//! error text never reaches the client: bodies carry a status, a reason and the request id.

use envoy_types::ext_authz::v3::pb::{
    CheckResponse, DeniedHttpResponse, HeaderAppendAction, HeaderValue, HeaderValueOption,
    HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::rpc;

use super::decide::{Decided, Decision};
use super::index::Index;
use super::request::RequestView;

const GRPC_OK: i32 = 0;
const GRPC_PERMISSION_DENIED: i32 = 7;
const GRPC_UNAUTHENTICATED: i32 = 16;

/// A header to set. The value is taken as it is when it is owned already (an assertion, a
/// rendered template): a Check's values are copied into the response once, not twice.
pub fn header(name: &str, value: impl Into<String>) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: name.to_string(),
            value: value.into(),
            ..Default::default()
        }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..Default::default()
    }
}

pub fn allow(headers: Vec<HeaderValueOption>, headers_to_remove: Vec<String>) -> CheckResponse {
    CheckResponse {
        status: Some(rpc::Status {
            code: GRPC_OK,
            ..Default::default()
        }),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers,
            headers_to_remove,
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// Adds `Set-Cookie` lines to the response the client gets (a refreshed session).
pub fn set_cookies(response: &mut CheckResponse, lines: &[String]) {
    if let Some(HttpResponse::OkResponse(ok)) = response.http_response.as_mut() {
        ok.response_headers_to_add
            .extend(lines.iter().map(|line| HeaderValueOption {
                header: Some(HeaderValue {
                    key: "set-cookie".into(),
                    value: line.clone(),
                    ..Default::default()
                }),
                append_action: HeaderAppendAction::AppendIfExistsOrAdd as i32,
                ..Default::default()
            }));
    }
}

fn denied(grpc: i32, status: u16, headers: Vec<HeaderValueOption>, body: String) -> CheckResponse {
    CheckResponse {
        status: Some(rpc::Status {
            code: grpc,
            ..Default::default()
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(status),
            }),
            headers,
            body,
        })),
        ..Default::default()
    }
}

/// What the client would rather read, per `Accept` (missing or unreadable counts as HTML, as
/// in Pomerium).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Html,
    Json,
    Text,
}

/// How much `accept` wants `wanted` (its q-value for the most specific matching range).
fn quality(accept: &str, wanted: &str) -> f32 {
    let (wanted_type, _) = wanted.split_once('/').unwrap_or((wanted, ""));
    let mut best: Option<(u8, f32)> = None;
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        let specificity = if media == wanted {
            3
        } else if media == format!("{wanted_type}/*") {
            2
        } else if media == "*/*" {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map(|(_, q)| q).unwrap_or(0.0)
}

fn present(accept: Option<&str>) -> Option<&str> {
    accept.filter(|a| !a.trim().is_empty())
}

/// The body format for a refusal: the best of HTML, JSON and text by `Accept`, HTML when
/// none is acceptable.
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = present(accept) else {
        return Format::Html;
    };
    let candidates = [
        (Format::Html, "text/html"),
        (Format::Json, "application/json"),
        (Format::Text, "text/plain"),
    ];
    let mut best = (Format::Html, 0.0f32);
    for (format, media) in candidates {
        let q = quality(accept, media);
        if q > best.1 {
            best = (format, q);
        }
    }
    if best.1 == 0.0 { Format::Html } else { best.0 }
}

/// Whether a request that needs sign-in gets the 302 to the sign-in page: when it prefers
/// `text/html` (a browser navigating), or says nothing. An `EventSource` (`text/event-stream`),
/// an API client or an image gets 401: a redirect to a login page is useless to them.
pub fn prefers_html(accept: Option<&str>) -> bool {
    let Some(accept) = present(accept) else {
        return true;
    };
    let html = quality(accept, "text/html");
    html > 0.0
        && ["application/json", "text/plain", "text/event-stream"]
            .iter()
            .all(|other| quality(accept, other) <= html)
}

fn status_text(status: u16) -> &'static str {
    match status {
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        495 => "SSL Certificate Error",
        _ => "Error",
    }
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A page or document explaining a refusal.
fn body(format: Format, status: u16, reasons: &[&str], request_id: &str) -> (String, &'static str) {
    let text = status_text(status);
    let reason = reasons.join(", ");
    match format {
        Format::Json => (
            serde_json::json!({"error": text, "status": status, "reason": reason, "request_id": request_id}).to_string(),
            "application/json",
        ),
        Format::Text => (format!("{status} {text}\nreason: {reason}\nrequest id: {request_id}\n"), "text/plain; charset=utf-8"),
        Format::Html => (
            format!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>{status} {text}</title>\
                 <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;color:#222}}\
                 code{{background:#f3f3f3;padding:0 .3em}}</style></head><body>\
                 <h1>{status} {text}</h1><p>You do not have access to this page.</p>\
                 <p>Reason: <code>{}</code></p><p>Request id: <code>{}</code></p></body></html>",
                escape(&reason),
                escape(request_id)
            ),
            "text/html; charset=utf-8",
        ),
    }
}

/// Where a browser goes to sign in, with the page it came from: a URL signed with the
/// `shared_secret`. Without `authenticate_service_url` that is the route host itself, as the
/// client reached it: its scheme (`http` on an `insecure_server` listener) and the port it put
/// in `:authority`. A route's `depends_on` hosts are signed in on the way back.
pub fn sign_in_url(index: &Index, request: &RequestView<'_>) -> String {
    // Envoy reports the scheme the client used; anything else (absent, odd) is https, the
    // scheme Pomerium assumes.
    let scheme = match request.scheme {
        "http" => "http",
        _ => "https",
    };
    let origin = format!("{scheme}://{}", request.host);
    let original = format!("{origin}{}", request.raw_path);
    let depends_on = request
        .route_id
        .and_then(|id| index.route(id))
        .map(|(route, _)| route.depends_on.as_slice())
        .unwrap_or_default();
    index
        .sign_in
        .sign_in_url(&origin, &original, depends_on, false)
}

pub fn refuse(decided: &Decided, request: &RequestView<'_>, index: &Index) -> CheckResponse {
    let format = negotiate(request.header("accept"));
    let with_type = |content_type: &'static str, mut headers: Vec<HeaderValueOption>| {
        headers.push(header("content-type", content_type));
        headers.push(header("cache-control", "no-store"));
        headers
    };
    match &decided.decision {
        Decision::Allow => allow(Vec::new(), Vec::new()),
        Decision::SignIn if prefers_html(request.header("accept")) && !is_grpc(request) => denied(
            GRPC_UNAUTHENTICATED,
            302,
            vec![
                header("location", sign_in_url(index, request)),
                header("cache-control", "no-store"),
            ],
            String::new(),
        ),
        Decision::SignIn => {
            let realm = format!("Bearer realm=\"{}\"", request.hostname());
            let (text, content_type) = body(
                if format == Format::Html {
                    Format::Text
                } else {
                    format
                },
                401,
                &["user-unauthenticated"],
                request.request_id,
            );
            denied(
                GRPC_UNAUTHENTICATED,
                401,
                with_type(content_type, vec![header("www-authenticate", realm)]),
                text,
            )
        }
        Decision::Deny { status, reasons } => {
            let (text, content_type) = body(format, *status, reasons, request.request_id);
            denied(
                GRPC_PERMISSION_DENIED,
                *status,
                with_type(content_type, Vec::new()),
                text,
            )
        }
        Decision::UnknownRoute => {
            let (text, content_type) = body(format, 404, &["route-not-found"], request.request_id);
            denied(
                GRPC_PERMISSION_DENIED,
                404,
                with_type(content_type, Vec::new()),
                text,
            )
        }
    }
}

fn is_grpc(request: &RequestView<'_>) -> bool {
    request
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/grpc"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation_follows_quality() {
        assert_eq!(negotiate(None), Format::Html);
        assert_eq!(negotiate(Some("application/json")), Format::Json);
        assert_eq!(
            negotiate(Some("text/html,application/json;q=0.9")),
            Format::Html
        );
        assert_eq!(
            negotiate(Some("application/json, text/html;q=0.5")),
            Format::Json
        );
        assert_eq!(negotiate(Some("*/*")), Format::Html);
        assert_eq!(negotiate(Some("text/plain")), Format::Text);
        assert_eq!(negotiate(Some("image/png")), Format::Html);
        assert_eq!(negotiate(Some(";;;,,q=x")), Format::Html);
        assert!(prefers_html(None));
        assert!(prefers_html(Some("*/*")));
        assert!(prefers_html(Some(
            "text/html,application/xhtml+xml,*/*;q=0.8"
        )));
        assert!(!prefers_html(Some("text/event-stream")));
        assert!(!prefers_html(Some("application/json")));
        assert!(!prefers_html(Some("image/png")));
        assert!(!prefers_html(Some("application/json, text/html;q=0.5")));
    }

    #[test]
    fn pages_escape_what_they_show() {
        let (html, _) = body(Format::Html, 403, &["<script>"], "\"id\"");
        assert!(
            !html.contains("<script>")
                && html.contains("&lt;script&gt;")
                && html.contains("&quot;id&quot;")
        );
    }
}
