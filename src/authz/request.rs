//! The parts of Envoy's CheckRequest a decision needs, read once.

use std::borrow::Cow;
use std::net::IpAddr;

use super::wire::{CheckRequest, text};
use crate::request_headers::RequestHeaders;

/// A request as ext_authz sees it. Everything is optional in the protocol; a malformed or
/// empty CheckRequest yields empty fields and is decided like any other (usually denied).
pub struct RequestView<'a> {
    pub route_id: Option<&'a str>,
    pub checksum: Option<&'a str>,
    pub method: &'a str,
    pub scheme: &'a str,
    /// `:authority` as the client sent it (port included).
    pub host: &'a str,
    /// The URL path, percent-decoded, without the query.
    pub path: Cow<'a, str>,
    /// The raw path with its query, for redirects back.
    pub raw_path: &'a str,
    pub headers: RequestHeaders<'a>,
    pub source_ip: Option<IpAddr>,
    pub request_id: &'a str,
    /// The client certificate, URL-encoded PEM, when Envoy saw one.
    pub certificate: &'a str,
}

impl<'a> RequestView<'a> {
    pub fn new(req: &'a CheckRequest) -> Self {
        let attributes = req.attributes.as_ref();
        let http = attributes
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref());
        let context = RequestHeaders(attributes.map_or(&[], |a| &a.context_extensions));
        let headers = RequestHeaders(http.map_or(&[], |h| &h.headers));
        let source = attributes.and_then(|a| a.source.as_ref());
        let source_ip = source
            .and_then(|s| s.address.as_ref())
            .and_then(|a| a.socket_address.as_ref())
            .and_then(|sa| text(&sa.address).parse().ok());
        let raw_path = http.map(|h| text(&h.path)).unwrap_or("/");
        let path_only = raw_path.split(['?', '#']).next().unwrap_or("/");
        RequestView {
            route_id: context.get("route_id"),
            checksum: context.get("route_checksum"),
            method: http.map(|h| text(&h.method)).unwrap_or("GET"),
            scheme: http
                .map(|h| text(&h.scheme))
                .filter(|s| !s.is_empty())
                .unwrap_or("https"),
            host: http.map(|h| text(&h.host)).unwrap_or(""),
            path: percent_encoding::percent_decode_str(path_only).decode_utf8_lossy(),
            raw_path,
            headers,
            source_ip,
            // The x-request-id Envoy also logs and returns to the client, so a user's report
            // of a deny page finds its log lines; Envoy's stream id only when there is none.
            request_id: headers
                .get("x-request-id")
                .filter(|i| !i.is_empty())
                .or_else(|| http.map(|h| text(&h.id)))
                .unwrap_or(""),
            certificate: source.map(|s| text(&s.certificate)).unwrap_or(""),
        }
    }

    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name)
    }

    /// The host without a port (`[::1]` keeps its brackets).
    pub fn hostname(&self) -> &'a str {
        hostname(self.host)
    }
}

pub fn hostname(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map(|end| &host[..=end]).unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::hostname;

    #[test]
    fn hostnames_lose_their_port() {
        assert_eq!(hostname("app.example.com:8443"), "app.example.com");
        assert_eq!(hostname("app.example.com"), "app.example.com");
        assert_eq!(hostname("[::1]:8443"), "[::1]");
        assert_eq!(hostname("[::1]"), "[::1]");
        assert_eq!(hostname(""), "");
    }
}
