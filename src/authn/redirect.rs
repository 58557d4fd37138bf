//! Where sign-in and sign-out may send a browser back to: hosts of configured routes and the
//! authenticate host, nothing else (no open redirects).

use std::collections::HashSet;

use crate::config::Model;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectError {
    #[error("the redirect target is not an absolute http(s) URL")]
    NotAbsolute,
    #[error("the redirect target carries a user name or password")]
    UserInfo,
    #[error("the redirect target's host is not one of sluice's routes")]
    ForeignHost,
}

/// The hosts a browser may be sent back to.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    exact: HashSet<String>,
    /// `.example.com` for a `*.example.com` route.
    suffixes: Vec<String>,
    /// A catch-all (`*`) route makes every host a route host.
    any: bool,
    /// `programmatic_redirect_domain_whitelist`: also allowed for programmatic logins.
    programmatic: Vec<String>,
}

impl Targets {
    pub fn new(model: &Model) -> Targets {
        let mut targets = Targets::default();
        for route in &model.routes {
            let host = route.from.host.as_str();
            if host == "*" {
                targets.any = true;
            } else if let Some(suffix) = host.strip_prefix('*') {
                targets.suffixes.push(suffix.to_string());
            } else {
                targets.exact.insert(host.to_string());
            }
        }
        let g = &model.global;
        if let Some(host) = g
            .authenticate_service_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        {
            targets.exact.insert(host);
        }
        targets.programmatic = g.programmatic_redirect_domain_whitelist.clone();
        targets
    }

    /// Whether `host` (lowercase, no port) is a route host or the authenticate host.
    pub fn is_known_host(&self, host: &str) -> bool {
        self.any || self.exact.contains(host) || self.suffixes.iter().any(|s| host.ends_with(s))
    }

    /// The parsed target, when a browser may be sent there.
    pub fn check(&self, target: &str) -> Result<url::Url, RedirectError> {
        let url = parse(target)?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        if self.is_known_host(&host) {
            Ok(url)
        } else {
            Err(RedirectError::ForeignHost)
        }
    }

    /// As `check`, also allowing the programmatic whitelist (a CLI's `localhost` callback).
    pub fn check_programmatic(&self, target: &str) -> Result<url::Url, RedirectError> {
        let url = parse(target)?;
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let listed = self
            .programmatic
            .iter()
            .any(|d| host == *d || host.ends_with(&format!(".{d}")));
        if listed || self.is_known_host(&host) {
            Ok(url)
        } else {
            Err(RedirectError::ForeignHost)
        }
    }
}

fn parse(target: &str) -> Result<url::Url, RedirectError> {
    // Control characters and backslashes have no place in a redirect target; browsers read
    // `https:\\evil` and tabs inside a scheme in their own ways.
    if target.chars().any(|c| c.is_control() || c == '\\') {
        return Err(RedirectError::NotAbsolute);
    }
    let url = url::Url::parse(target).map_err(|_| RedirectError::NotAbsolute)?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(RedirectError::NotAbsolute);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RedirectError::UserInfo);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn targets() -> Targets {
        Targets {
            exact: ["app.example.com", "auth.example.com"]
                .map(String::from)
                .into(),
            suffixes: vec![".apps.example.com".into()],
            any: false,
            programmatic: vec!["localhost".into()],
        }
    }

    #[test]
    fn only_route_hosts_are_targets() {
        let t = targets();
        for good in [
            "https://app.example.com/",
            "https://APP.example.com:8443/a?b=c#d",
            "http://app.example.com/x",
            "https://one.apps.example.com/",
        ] {
            assert!(t.check(good).is_ok(), "{good}");
        }
        for bad in [
            "https://evil.com/",
            "//evil.com/",
            "/relative",
            "javascript:alert(1)",
            "data:text/html,hi",
            "https://app.example.com@evil.com/",
            "https://user:pw@app.example.com/",
            "https://app.example.com%2F@evil.com/",
            "https://evil.com%2F.app.example.com/",
            "https:\\\\evil.com",
            "https://evil.com\\@app.example.com",
            "java\tscript:alert(1)",
            "https://app.example.com.evil.com/",
            "https://apps.example.com.evil.com/",
            "ftp://app.example.com/",
            "",
        ] {
            assert!(t.check(bad).is_err(), "{bad}");
        }
        assert!(t.check("http://localhost:8000/cb").is_err());
        assert!(t.check_programmatic("http://localhost:8000/cb").is_ok());
        assert!(t.check_programmatic("http://127.0.0.1:8000/cb").is_err());
    }
}
