//! Addresses and URLs: listen addresses, upstream `to` URLs and `from` URLs, with Pomerium's
//! rules and messages.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use url::Url;

use crate::config::model::{FromUrl, Upstream, UpstreamScheme};

/// Parses a listen address such as `:443`, `0.0.0.0:8443`, `[::]:443` or `localhost:9901`.
/// An empty host listens on every IPv4 address; a missing port takes `default_port`.
pub fn parse_listen_addr(text: &str, default_port: Option<u16>) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return check_port(addr);
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.starts_with('[') => (h, Some(p)),
        _ => (text, None),
    };
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("`{p}` is not a port number (1-65535)"))?,
        None => default_port.ok_or("the address needs a port, as in `127.0.0.1:9901`")?,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match host {
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        other => other.parse::<IpAddr>().map_err(|_| {
            format!("Envoy and sluice listen on IP addresses; `{other}` is not one (use e.g. 0.0.0.0 or 127.0.0.1)")
        })?,
    };
    check_port(SocketAddr::new(ip, port))
}

fn check_port(addr: SocketAddr) -> Result<SocketAddr, String> {
    if addr.port() == 0 {
        return Err("port 0 is not allowed; give a fixed port".into());
    }
    Ok(addr)
}

/// The address to connect to for a listen address: unspecified hosts mean loopback.
pub fn connect_host(addr: &SocketAddr) -> String {
    match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".into(),
        IpAddr::V6(v6) if v6.is_unspecified() => "::1".into(),
        ip => ip.to_string(),
    }
}

/// Parses a route's `from` with Pomerium's checks.
pub fn parse_from(text: &str) -> Result<FromUrl, String> {
    for (prefix, kind) in [("tcp+", "TCP"), ("udp+", "UDP"), ("ssh:", "SSH")] {
        if text.starts_with(prefix) {
            return Err(format!(
                "{kind} routes (`{prefix}…`) are not supported by sluice; only http:// and https:// routes are"
            ));
        }
    }
    if !text.contains("://") {
        return Err(format!(
            "`{text}` url does not contain a valid scheme (write it as https://{text})"
        ));
    }
    let url = Url::parse(text).map_err(|e| format!("`{text}` is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{text}` has scheme `{}`; a route's `from` must be http:// or https://",
            url.scheme()
        ));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("`{text}` url does not contain a valid hostname"))?
        .to_ascii_lowercase();
    if !matches!(url.path(), "" | "/") {
        return Err(format!(
            "the source url ({text}) contains a path, but it should be set using the path field instead (`prefix`, `path` or `regex`)"
        ));
    }
    if host.contains('*') && !(host == "*" || (host.starts_with("*.") && !host[2..].contains('*')))
    {
        return Err(format!(
            "`{host}`: a wildcard is only allowed as a whole leading label, as in `*.example.com`"
        ));
    }
    Ok(FromUrl {
        scheme: url.scheme().to_string(),
        host,
        port: url.port(),
    })
}

/// One `to` entry: a URL with an optional `,<weight>` suffix. Returns the upstream and the
/// URL's path (a path on the first `to` becomes an implicit `prefix_rewrite`).
pub fn parse_to(text: &str) -> Result<(Upstream, String), String> {
    let (url_text, weight) = match text.rsplit_once(',') {
        Some((u, w)) => {
            let w = w.trim();
            let weight = w.parse::<u32>().map_err(|_| {
                format!("`{w}` is not a load balancing weight; write `<url>,<whole number>`")
            })?;
            if weight == 0 {
                return Err("zero load balancing weight not permitted".into());
            }
            (u.trim(), Some(weight))
        }
        None => (text.trim(), None),
    };
    for unsupported in ["tcp", "udp", "unix", "https+unix", "ssh"] {
        if url_text.starts_with(&format!("{unsupported}:")) {
            return Err(format!(
                "`{unsupported}` upstreams are not supported by sluice; use http://, https:// or h2c://"
            ));
        }
    }
    if !url_text.contains("://") {
        return Err(format!(
            "`{url_text}` url does not contain a valid scheme (write it as http://{url_text})"
        ));
    }
    let url = Url::parse(url_text).map_err(|e| format!("`{url_text}` is not a valid URL: {e}"))?;
    let scheme = match url.scheme() {
        "http" => UpstreamScheme::Http,
        "https" => UpstreamScheme::Https,
        "h2c" => UpstreamScheme::H2c,
        other => {
            return Err(format!(
                "unsupported upstream scheme `{other}` (use http, https or h2c)"
            ));
        }
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("endpoint hostname must be specified")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = url.port().unwrap_or(match scheme {
        UpstreamScheme::Https => 443,
        UpstreamScheme::Http | UpstreamScheme::H2c => 80,
    });
    let path = match url.path() {
        "/" => String::new(),
        p => p.to_string(),
    };
    Ok((
        Upstream {
            scheme,
            host,
            port,
            weight,
        },
        path,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen_addr(":443", None).unwrap().to_string(),
            "0.0.0.0:443"
        );
        assert_eq!(
            parse_listen_addr("127.0.0.1:8080", None)
                .unwrap()
                .to_string(),
            "127.0.0.1:8080"
        );
        assert_eq!(
            parse_listen_addr("[::]:443", None).unwrap().to_string(),
            "[::]:443"
        );
        assert_eq!(
            parse_listen_addr("localhost:9901", None)
                .unwrap()
                .to_string(),
            "127.0.0.1:9901"
        );
        assert_eq!(
            parse_listen_addr("0.0.0.0", Some(80)).unwrap().to_string(),
            "0.0.0.0:80"
        );
        assert!(parse_listen_addr("example.com:443", None).is_err());
        assert!(parse_listen_addr(":0", None).is_err());
        assert!(parse_listen_addr(":99999", None).is_err());
    }

    #[test]
    fn from_urls_follow_pomerium() {
        assert_eq!(
            parse_from("https://App.Example.com").unwrap().host,
            "app.example.com"
        );
        assert_eq!(
            parse_from("https://*.example.com").unwrap().host,
            "*.example.com"
        );
        assert!(
            parse_from("app.example.com")
                .unwrap_err()
                .contains("does not contain a valid scheme")
        );
        assert!(
            parse_from("https://x.com/path")
                .unwrap_err()
                .contains("contains a path")
        );
        assert!(
            parse_from("tcp+https://x.com:22")
                .unwrap_err()
                .contains("not supported")
        );
        assert!(
            parse_from("https://a.*.com")
                .unwrap_err()
                .contains("wildcard")
        );
    }

    #[test]
    fn to_urls_follow_pomerium() {
        let (u, path) = parse_to("http://10.0.0.1:8080/api,3").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.weight, path.as_str()),
            ("10.0.0.1", 8080, Some(3), "/api")
        );
        assert_eq!(parse_to("https://svc").unwrap().0.port, 443);
        assert_eq!(
            parse_to("http://svc,0").unwrap_err(),
            "zero load balancing weight not permitted"
        );
        assert!(parse_to("http://svc,x").is_err());
        assert!(parse_to("http://").is_err());
    }
}
