//! A real OpenID provider (the npm package oidc-provider, `tests/oidc/op.mjs`) on loopback, and
//! browsers that sign in through it: `Browserless`, which follows redirects, keeps cookies and
//! fills the provider's login form as a person would, and headless Chromium driven by Playwright.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::{self, Reply};
use super::process::{Guard, POLL_INTERVAL, free_port, poll};
use super::repo_root;

const INSTALL_HINT: &str = "the sign-in tests need the OpenID provider and browser driver: run `bash scripts/install-oidc-peers.sh` (npm ci in tests/oidc, Debian's chromium)";

fn peers_dir() -> PathBuf {
    repo_root().join("tests/oidc")
}

/// Fails the test, with the way to fix it, when the npm packages are not installed.
fn require_peers() {
    let modules = peers_dir().join("node_modules");
    assert!(
        modules.join("oidc-provider").is_dir() && modules.join("playwright-core").is_dir(),
        "{INSTALL_HINT}"
    );
}

/// The one client the provider knows: sluice.
#[derive(Clone, Debug)]
pub struct ClientSpec {
    pub id: String,
    pub secret: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub id_token_ttl: u64,
    pub access_token_ttl: u64,
}

impl ClientSpec {
    pub fn new(redirect_uris: &[String], post_logout_redirect_uris: &[String]) -> ClientSpec {
        ClientSpec {
            id: "sluice".into(),
            secret: "sluice-oidc-test-secret".into(),
            redirect_uris: redirect_uris.to_vec(),
            post_logout_redirect_uris: post_logout_redirect_uris.to_vec(),
            id_token_ttl: 3600,
            access_token_ttl: 3600,
        }
    }
}

/// What the provider counted (its `/test/stats` hook).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    pub token_requests: u64,
    pub refresh_requests: u64,
    pub end_session_requests: u64,
}

pub struct Provider {
    _guard: Guard,
    _dir: tempfile::TempDir,
    issuer: String,
    port: u16,
    client: ClientSpec,
}

impl Provider {
    pub fn start(client: &ClientSpec) -> Provider {
        require_peers();
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("provider.log");
        let port = free_port();
        let mut command = Command::new("node");
        command
            .arg(peers_dir().join("op.mjs"))
            .env("PORT", port.to_string())
            .env("CLIENT_ID", &client.id)
            .env("CLIENT_SECRET", &client.secret)
            .env("REDIRECT_URIS", client.redirect_uris.join(","))
            .env(
                "POST_LOGOUT_REDIRECT_URIS",
                client.post_logout_redirect_uris.join(","),
            )
            .env("ID_TOKEN_TTL", client.id_token_ttl.to_string())
            .env("ACCESS_TOKEN_TTL", client.access_token_ttl.to_string());
        let guard = Guard::spawn("oidc-provider", command, &log);
        let issuer = poll(Duration::from_secs(20), || {
            let text = std::fs::read_to_string(&log).ok()?;
            let line = text.lines().find(|l| l.starts_with("{\"ready\""))?;
            let ready: Value = serde_json::from_str(line).ok()?;
            ready["issuer"].as_str().map(str::to_string)
        })
        .unwrap_or_else(|| {
            panic!(
                "the OpenID provider did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        Provider {
            _guard: guard,
            _dir: dir,
            issuer,
            port,
            client: client.clone(),
        }
    }

    /// The global config lines that make sluice sign users in here.
    pub fn config(&self) -> String {
        format!(
            "idp_provider: oidc\nidp_provider_url: {}\nidp_client_id: {}\nidp_client_secret: {}\n",
            self.issuer, self.client.id, self.client.secret
        )
    }

    pub fn stats(&self) -> Stats {
        let reply = http::get(
            self.port,
            &format!("127.0.0.1:{}", self.port),
            "/test/stats",
        )
        .expect("provider stats");
        let v: Value = serde_json::from_str(&reply.body).expect("stats JSON");
        let n = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
        Stats {
            token_requests: n("token_requests"),
            refresh_requests: n("refresh_requests"),
            end_session_requests: n("end_session_requests"),
        }
    }

    /// From now on the provider refuses every refresh (as when a user is removed there).
    pub fn refuse_refresh(&self) {
        let reply = http::request(
            "POST",
            self.port,
            &format!("127.0.0.1:{}", self.port),
            "/test/refuse-refresh",
            &[],
        )
        .expect("refuse refresh");
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
}

/// A page as a browser got it.
#[derive(Debug)]
pub struct Page {
    pub url: url::Url,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Page {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Where a redirect sends the browser, resolved against this page.
    pub fn location(&self) -> Option<url::Url> {
        let l = self.header("location")?;
        self.url.join(l).ok()
    }

    pub fn is_redirect(&self) -> bool {
        matches!(self.status, 301 | 302 | 303 | 307 | 308)
    }

    /// The names of the cookies this answer sets (or clears).
    pub fn set_cookie_names(&self) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
            .filter_map(|(_, v)| v.split_once('=').map(|(n, _)| n.trim().to_string()))
            .collect()
    }

    /// The `action` of the first form whose fields include `marker`, resolved against this page.
    pub fn form_action(&self, marker: &str) -> Option<url::Url> {
        let at = self.body.find(marker)?;
        let form = self.body[..at].rfind("<form")?;
        let action = self.body[form..]
            .split("action=\"")
            .nth(1)?
            .split('"')
            .next()?;
        self.url.join(&action.replace("&amp;", "&")).ok()
    }

    /// The value of a hidden input, by name.
    pub fn input_value(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\"");
        let at = self.body.find(&marker)?;
        let tag_start = self.body[..at].rfind('<')?;
        let tag_end = at + self.body[at..].find('>')?;
        let tag = &self.body[tag_start..tag_end];
        tag.split("value=\"")
            .nth(1)?
            .split('"')
            .next()
            .map(str::to_string)
    }
}

#[derive(Clone, Debug)]
struct Cookie {
    name: String,
    value: String,
    /// The host that set it, or the `Domain` it names (then subdomains match too).
    host: String,
    domain: bool,
    path: String,
}

/// A browser without JavaScript: every request goes to 127.0.0.1 (all test hosts are
/// loopback names), cookies are kept per host and path as browsers keep them, and redirects
/// are followed only when asked.
#[derive(Default)]
pub struct Browserless {
    jar: Vec<Cookie>,
}

/// The most redirects a navigation follows (Chromium's limit is 20).
const MAX_HOPS: usize = 20;

impl Browserless {
    pub fn new() -> Browserless {
        Browserless::default()
    }

    fn port(url: &url::Url) -> u16 {
        url.port_or_known_default().unwrap_or(80)
    }

    fn authority(url: &url::Url) -> String {
        match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_string(),
        }
    }

    fn matching(&self, url: &url::Url) -> impl Iterator<Item = &Cookie> {
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let path = url.path().to_string();
        self.jar.iter().filter(move |c| {
            let host_ok = host == c.host || (c.domain && host.ends_with(&format!(".{}", c.host)));
            host_ok && path.starts_with(&c.path)
        })
    }

    /// The `Cookie` header this browser sends to `url`.
    pub fn cookie_header(&self, url: &url::Url) -> String {
        self.matching(url)
            .map(|c| format!("{}={}", c.name, c.value))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The cookies this browser sends to `url`, by name.
    pub fn cookies_for(&self, url: &str) -> HashMap<String, String> {
        let url = url::Url::parse(url).expect("url");
        self.matching(&url)
            .map(|c| (c.name.clone(), c.value.clone()))
            .collect()
    }

    /// Stores a cookie as if `url` had set it.
    pub fn set_cookie(&mut self, url: &str, name: &str, value: &str) {
        let url = url::Url::parse(url).expect("url");
        self.store(&url, &format!("{name}={value}; Path=/"));
    }

    fn store(&mut self, url: &url::Url, line: &str) {
        let mut parts = line.split(';');
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
            return;
        };
        let mut cookie = Cookie {
            name: name.trim().to_string(),
            value: value.trim().to_string(),
            host: url.host_str().unwrap_or_default().to_ascii_lowercase(),
            domain: false,
            path: "/".into(),
        };
        let mut expired = cookie.value.is_empty();
        for attribute in parts {
            let (k, v) = attribute.split_once('=').unwrap_or((attribute, ""));
            match k.trim().to_ascii_lowercase().as_str() {
                "domain" => {
                    cookie.host = v.trim().trim_start_matches('.').to_ascii_lowercase();
                    cookie.domain = true;
                }
                "path" => cookie.path = v.trim().to_string(),
                "max-age" => expired |= v.trim().parse::<i64>().is_ok_and(|s| s <= 0),
                "expires" => expired |= v.contains("1970"),
                _ => {}
            }
        }
        self.jar
            .retain(|c| !(c.name == cookie.name && c.host == cookie.host && c.path == cookie.path));
        if !expired {
            self.jar.push(cookie);
        }
    }

    fn send(&mut self, method: &str, url: &url::Url, body: Option<&str>) -> Page {
        let cookie = self.cookie_header(url);
        let mut headers = vec![
            ("Accept", "text/html,application/xhtml+xml"),
            ("User-Agent", "sluice-test-browser"),
        ];
        if !cookie.is_empty() {
            headers.push(("Cookie", cookie.as_str()));
        }
        if body.is_some() {
            headers.push(("Content-Type", "application/x-www-form-urlencoded"));
        }
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let reply: Reply = http::send(
            method,
            Self::port(url),
            &Self::authority(url),
            &target,
            &headers,
            body.unwrap_or(""),
        )
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        for (k, v) in &reply.headers {
            if k.eq_ignore_ascii_case("set-cookie") {
                self.store(url, v);
            }
        }
        Page {
            url: url.clone(),
            status: reply.status,
            headers: reply.headers,
            body: reply.body,
        }
    }

    /// One GET, no redirect followed.
    pub fn get(&mut self, url: &str) -> Page {
        let url = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        self.send("GET", &url, None)
    }

    /// One form POST, no redirect followed.
    pub fn post_form(&mut self, url: &url::Url, form: &[(&str, &str)]) -> Page {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send("POST", url, Some(&body))
    }

    /// Follows the redirects of `first` (already fetched) to a page that is not one;
    /// returns it and every URL visited after `first`.
    pub fn follow_from(&mut self, first: Page) -> (Page, Vec<String>) {
        let mut page = first;
        let mut hops = Vec::new();
        while page.is_redirect() {
            assert!(hops.len() < MAX_HOPS, "redirect loop: {hops:#?}");
            let next = page
                .location()
                .unwrap_or_else(|| panic!("{} from {} without a Location", page.status, page.url));
            hops.push(next.to_string());
            page = self.send("GET", &next, None);
        }
        (page, hops)
    }

    /// GETs `url` and follows its redirects.
    pub fn follow(&mut self, url: &str) -> (Page, Vec<String>) {
        let first = self.get(url);
        let mut hops = vec![url.to_string()];
        let (page, more) = self.follow_from(first);
        hops.extend(more);
        (page, hops)
    }

    /// Navigates to `start` and signs in as `user` wherever the provider asks (any password
    /// works there), until a page that is not a redirect or a login form.
    pub fn login(&mut self, start: &str, user: &str) -> (Page, Vec<String>) {
        let (mut page, mut hops) = self.follow(start);
        for _ in 0..4 {
            let form = if page.body.contains("name=\"prompt\" value=\"login\"") {
                page.form_action("name=\"prompt\" value=\"login\"")
                    .map(|a| {
                        (
                            a,
                            vec![("prompt", "login"), ("login", user), ("password", "x")],
                        )
                    })
            } else if page.body.contains("name=\"prompt\" value=\"consent\"") {
                page.form_action("name=\"prompt\" value=\"consent\"")
                    .map(|a| (a, vec![("prompt", "consent")]))
            } else {
                None
            };
            let Some((action, fields)) = form else {
                break;
            };
            hops.push(format!("POST {action}"));
            let posted = self.post_form(&action, &fields);
            let (next, more) = self.follow_from(posted);
            hops.extend(more);
            page = next;
        }
        (page, hops)
    }
}

/// The signed sign-out link on sluice's sign-out confirmation page.
pub fn signed_sign_out_link(page: &str) -> Option<String> {
    page.split("href=\"")
        .skip(1)
        .find_map(|s| {
            s.split('"')
                .next()
                .filter(|u| u.contains("pomerium_signature"))
        })
        .map(|u| u.replace("&amp;", "&"))
}

/// What headless Chromium saw.
#[derive(Debug)]
pub struct BrowserResult {
    /// Where the browser was after signing in.
    pub final_url: String,
    /// The text of that page.
    pub body_text: String,
    /// The text of the user page (`/.pomerium/`) on the same host, which the screenshot shows.
    pub user_page_text: String,
}

/// Signs in as `user` in headless Chromium (Debian's, driven by playwright-core), starting at
/// `start`, and writes a screenshot of the user page to `screenshot`.
pub fn browser_login(start: &str, user: &str, screenshot: &Path) -> BrowserResult {
    require_peers();
    assert!(Path::new("/usr/bin/chromium").exists(), "{INSTALL_HINT}");
    if let Some(dir) = screenshot.parent() {
        std::fs::create_dir_all(dir).expect("screenshot folder");
    }
    let mut child = Command::new("node")
        .arg(peers_dir().join("browser.mjs"))
        .args([start, user])
        .arg(screenshot)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the browser") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser did not finish its sign-in within 60 s");
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    let output = child.wait_with_output().expect("browser output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        status.success(),
        "browser sign-in failed: {stdout}\n{stderr}"
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no result from the browser: {stdout}\n{stderr}"));
    let v: Value = serde_json::from_str(line).expect("browser result JSON");
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    BrowserResult {
        final_url: text("final_url"),
        body_text: text("body_text"),
        user_page_text: text("user_page_text"),
    }
}
