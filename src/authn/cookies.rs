//! Reading and writing sluice's cookies: the `Cookie` header, `Set-Cookie` lines with the
//! configured attributes, and sessions too large for one cookie split across several.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use crate::config::model::{CookieSettings, SameSite};

/// Browsers keep at most ~4096 bytes per cookie, name and attributes included.
const CHUNK: usize = 3800;
/// A session split in more parts than this is refused (the request headers would be huge).
pub const MAX_CHUNKS: usize = 16;

/// The value of cookie `name` in a `Cookie` header.
pub fn get<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

/// The names of the cookies in a `Cookie` header.
pub fn names(header: &str) -> impl Iterator<Item = &str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('=').map(|(k, _)| k.trim()))
}

/// How a cookie is written.
#[derive(Clone, Debug)]
pub struct Attributes {
    pub settings: CookieSettings,
    /// `Secure`: left out only when sluice serves plain HTTP (local use).
    pub secure: bool,
    /// Whether `settings.domain` applies (route cookies) or the cookie is host-only (the
    /// authenticate host's).
    pub use_domain: bool,
}

impl Attributes {
    /// A `Set-Cookie` value keeping `value` for `lifetime`.
    pub fn set(&self, name: &str, value: &str, lifetime: Duration) -> String {
        let expires = httpdate::fmt_http_date(SystemTime::now() + lifetime);
        self.line(
            name,
            value,
            &format!("Expires={expires}; Max-Age={}", lifetime.as_secs()),
        )
    }

    /// A `Set-Cookie` value that removes the cookie.
    pub fn clear(&self, name: &str) -> String {
        self.line(name, "", "Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0")
    }

    fn line(&self, name: &str, value: &str, lifetime: &str) -> String {
        let mut line = format!("{name}={value}; Path=/; {lifetime}");
        if self.use_domain
            && let Some(domain) = &self.settings.domain
        {
            line.push_str(&format!("; Domain={domain}"));
        }
        if self.secure {
            line.push_str("; Secure");
        }
        if self.settings.http_only {
            line.push_str("; HttpOnly");
        }
        match self.settings.same_site {
            Some(SameSite::Lax) => line.push_str("; SameSite=Lax"),
            Some(SameSite::Strict) => line.push_str("; SameSite=Strict"),
            Some(SameSite::None) => line.push_str("; SameSite=None"),
            None => {}
        }
        line
    }

    /// `Set-Cookie` values storing `value` under `name` (split as `name`, `name_1`, ... when
    /// it is long), and clearing parts an earlier, longer value left (named in `header`).
    pub fn set_chunked(
        &self,
        name: &str,
        value: &str,
        lifetime: Duration,
        header: Option<&str>,
    ) -> Vec<String> {
        let parts: Vec<&str> = value
            .as_bytes()
            .chunks(CHUNK)
            .map(|c| std::str::from_utf8(c).expect("sealed values are ASCII"))
            .collect();
        let mut lines = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            if i == 0 && parts.len() > 1 {
                lines.push(self.set(name, &format!("{}.{part}", parts.len()), lifetime));
            } else if i == 0 {
                lines.push(self.set(name, part, lifetime));
            } else {
                lines.push(self.set(&format!("{name}_{i}"), part, lifetime));
            }
        }
        lines.extend(stale_parts(header, name, parts.len()).map(|n| self.clear(&n)));
        lines
    }

    /// `Set-Cookie` values removing `name` and every part of it named in `header`.
    pub fn clear_chunked(&self, name: &str, header: Option<&str>) -> Vec<String> {
        std::iter::once(self.clear(name))
            .chain(stale_parts(header, name, 1).map(|n| self.clear(&n)))
            .collect()
    }
}

/// Names `name_<i>` in `header` with `i >= keep`.
fn stale_parts<'a>(
    header: Option<&'a str>,
    name: &'a str,
    keep: usize,
) -> impl Iterator<Item = String> + 'a {
    header.into_iter().flat_map(names).filter_map(move |n| {
        let i: usize = n.strip_prefix(name)?.strip_prefix('_')?.parse().ok()?;
        (i >= keep).then(|| n.to_string())
    })
}

/// The value stored by `set_chunked`, put back together; `None` when a part is missing.
pub fn get_chunked<'a>(header: &'a str, name: &str) -> Option<Cow<'a, str>> {
    let first = get(header, name)?;
    let Some((count, part)) = first.split_once('.') else {
        // One cookie, the common case: read in place.
        return Some(Cow::Borrowed(first));
    };
    let count: usize = count
        .parse()
        .ok()
        .filter(|n| (2..=MAX_CHUNKS).contains(n))?;
    let mut value = part.to_string();
    for i in 1..count {
        value.push_str(get(header, &format!("{name}_{i}"))?);
    }
    Some(Cow::Owned(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn attributes() -> Attributes {
        Attributes {
            settings: CookieSettings {
                http_only: true,
                same_site: Some(SameSite::Lax),
                domain: Some("example.com".into()),
            },
            secure: true,
            use_domain: true,
        }
    }

    #[test]
    fn attributes_are_written() {
        let line = attributes().set("_pomerium", "v", Duration::from_secs(60));
        assert!(line.starts_with("_pomerium=v; Path=/; Expires="), "{line}");
        for part in [
            "Max-Age=60",
            "Domain=example.com",
            "Secure",
            "HttpOnly",
            "SameSite=Lax",
        ] {
            assert!(line.contains(part), "{line}");
        }
        let mut host_only = attributes();
        host_only.use_domain = false;
        host_only.secure = false;
        let line = host_only.clear("_pomerium");
        assert!(!line.contains("Domain") && !line.contains("Secure") && line.contains("Max-Age=0"));
    }

    fn header_from(lines: &[String]) -> String {
        lines
            .iter()
            .map(|l| l.split(';').next().unwrap().to_string())
            .filter(|kv| !kv.ends_with('='))
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn long_values_are_split_and_joined() {
        let value = "a".repeat(9000);
        let lines = attributes().set_chunked("_pomerium", &value, Duration::from_secs(9), None);
        assert_eq!(lines.len(), 3);
        let header = format!("other=1; {}", header_from(&lines));
        assert_eq!(
            get_chunked(&header, "_pomerium").as_deref(),
            Some(value.as_str())
        );
        // A shorter value clears the parts the longer one left.
        let shorter =
            attributes().set_chunked("_pomerium", "b", Duration::from_secs(9), Some(&header));
        assert_eq!(shorter.len(), 3);
        assert!(shorter[1].starts_with("_pomerium_1=;") && shorter[2].starts_with("_pomerium_2=;"));
        // A missing part means no value.
        let broken = header.replace("_pomerium_2=", "x=");
        assert_eq!(get_chunked(&broken, "_pomerium"), None);
        assert_eq!(get_chunked("_pomerium=99.x", "_pomerium"), None);
    }

    proptest! {
        #[test]
        fn any_cookie_header_is_read_without_panicking(header in ".{0,300}") {
            let _ = get_chunked(&header, "_pomerium");
            let _ = names(&header).count();
        }
    }
}
