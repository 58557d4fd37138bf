//! The parts of Envoy's CheckRequest a decision needs, read once.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

use envoy_types::pb::envoy::config::core::v3::address::Address;
use envoy_types::pb::envoy::service::auth::v3::CheckRequest;

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
    pub headers: &'a HashMap<String, String>,
    pub source_ip: Option<IpAddr>,
    pub request_id: &'a str,
    /// The client certificate, URL-encoded PEM, when Envoy saw one.
    pub certificate: &'a str,
}

static EMPTY: std::sync::LazyLock<HashMap<String, String>> = std::sync::LazyLock::new(HashMap::new);

impl<'a> RequestView<'a> {
    pub fn new(req: &'a CheckRequest) -> Self {
        let attributes = req.attributes.as_ref();
        let http = attributes
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref());
        let context = attributes.map(|a| &a.context_extensions);
        let source = attributes.and_then(|a| a.source.as_ref());
        let source_ip = source
            .and_then(|s| s.address.as_ref())
            .and_then(|a| match &a.address {
                Some(Address::SocketAddress(sa)) => sa.address.parse().ok(),
                _ => None,
            });
        let raw_path = http.map(|h| h.path.as_str()).unwrap_or("/");
        let path_only = raw_path.split(['?', '#']).next().unwrap_or("/");
        RequestView {
            route_id: context.and_then(|c| c.get("route_id")).map(String::as_str),
            checksum: context
                .and_then(|c| c.get("route_checksum"))
                .map(String::as_str),
            method: http.map(|h| h.method.as_str()).unwrap_or("GET"),
            scheme: http
                .map(|h| h.scheme.as_str())
                .filter(|s| !s.is_empty())
                .unwrap_or("https"),
            host: http.map(|h| h.host.as_str()).unwrap_or(""),
            path: percent_encoding::percent_decode_str(path_only).decode_utf8_lossy(),
            raw_path,
            headers: http.map(|h| &h.headers).unwrap_or(&EMPTY),
            source_ip,
            // The x-request-id Envoy also logs and returns to the client, so a user's report
            // of a deny page finds its log lines; Envoy's stream id only when there is none.
            request_id: http
                .and_then(|h| h.headers.get("x-request-id"))
                .map(String::as_str)
                .filter(|i| !i.is_empty())
                .or_else(|| http.map(|h| h.id.as_str()))
                .unwrap_or(""),
            certificate: source.map(|s| s.certificate.as_str()).unwrap_or(""),
        }
    }

    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers.get(name).map(String::as_str)
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
