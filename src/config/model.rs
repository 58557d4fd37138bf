//! The validated config: typed, defaults applied, every setting knowing where it came from.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::secret::Secret;
use super::template::Template;
use crate::document::Diagnostic;
use crate::policy::Policy;

/// A validated config file.
#[derive(Clone, Debug, Serialize)]
pub struct Model {
    #[serde(skip)]
    pub file: PathBuf,
    pub global: Global,
    pub routes: Vec<Arc<Route>>,
    /// Warnings found while validating (a valid config may still have some).
    #[serde(skip)]
    pub warnings: Vec<Diagnostic>,
}

impl Model {
    /// The directory relative paths in the config were resolved against.
    pub fn config_dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new(""))
    }
}

/// Where a setting's value came from, so `explain` can name the key and line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Written in the file under this key, on this line.
    Key { key: String, line: usize },
    /// Not written: Pomerium's default for this key.
    Default { key: String },
    /// Chosen by sluice for a reason (e.g. streams get no route timeout).
    Sluice { why: String },
}

/// A value and its origin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Setting<T> {
    pub value: T,
    pub origin: Origin,
}

/// Only the value: where it was written does not change what it means.
impl<T: Hash> Hash for Setting<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state);
    }
}

impl<T> Setting<T> {
    pub fn written(value: T, key: &str, line: usize) -> Self {
        Setting {
            value,
            origin: Origin::Key {
                key: key.to_string(),
                line,
            },
        }
    }

    pub fn default(value: T, key: &str) -> Self {
        Setting {
            value,
            origin: Origin::Default {
                key: key.to_string(),
            },
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum CodecType {
    Auto,
    Http1,
    Http2,
    Http3,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default, Hash)]
#[serde(rename_all = "snake_case")]
pub enum BearerTokenFormat {
    /// Pomerium's `default`: bearer tokens are not read as identity.
    #[default]
    Default,
    IdpAccessToken,
    IdpIdentityToken,
    /// A Pomerium session JWT.
    Jwt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Hash)]
pub struct CertificatePair {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Where Envoy reaches sluice's gRPC server (ext_authz, and xDS for external Envoys).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Hash)]
pub struct ServiceAddress {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IdentityProvider {
    pub provider: String,
    pub url: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub scopes: Vec<String>,
}

/// Global settings.
/// Compared whole across reloads: an unchanged global lets a reload reuse per-host work.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Global {
    pub address: SocketAddr,
    pub insecure_server: bool,
    pub http_redirect_addr: Option<SocketAddr>,
    pub certificates: Vec<CertificatePair>,
    /// No certificate was configured, so `certificates` holds sluice's generated self-signed
    /// one (as Pomerium serves a generated one).
    pub self_signed: bool,
    /// Trusted roots for upstream TLS when a route sets no `tls_custom_ca_file`.
    pub certificate_authority_file: Option<PathBuf>,
    /// `downstream_mtls`, when it is configured.
    pub downstream_mtls: Option<DownstreamMtls>,
    /// Every client CA (the global one and the routes' `tls_downstream_client_ca`) in one
    /// file: the listener asks clients for a certificate when there is one.
    pub client_ca_bundle: Option<PathBuf>,
    pub codec_type: CodecType,
    pub timeout_read: Setting<Duration>,
    pub timeout_write: Setting<Duration>,
    pub timeout_idle: Setting<Duration>,
    pub default_upstream_timeout: Setting<Duration>,
    pub grpc_address: SocketAddr,
    pub grpc_client_timeout: Setting<Duration>,
    pub authorize_service: ServiceAddress,
    pub metrics_address: Option<SocketAddr>,
    pub envoy_admin_address: SocketAddr,
    pub authenticate_service_url: Option<String>,
    pub idp: Option<IdentityProvider>,
    pub shared_secret: Option<Secret>,
    pub cookie_secret: Option<Secret>,
    pub cookie_name: String,
    pub cookie_expire: Duration,
    pub cookie: CookieSettings,
    /// Where sign-out sends the browser when the request names no redirect.
    pub signout_redirect_url: Option<String>,
    /// Domains a programmatic sign-in may redirect to (lowercase).
    pub programmatic_redirect_domain_whitelist: Vec<String>,
    pub runtime_flags: RuntimeFlags,
    pub signing_key: Option<Secret>,
    /// Header name → claim name.
    pub jwt_claims_headers: BTreeMap<String, String>,
    pub pass_identity_headers: bool,
    pub set_response_headers: Arc<BTreeMap<String, String>>,
    pub bearer_token_format: BearerTokenFormat,
    pub log_level: LogLevel,
    /// How long a replaced listener's open connections may finish (Envoy's `--drain-time-s`).
    pub drain_time: Setting<Duration>,
    /// Between the HTTP/2 GOAWAY that announces a drain and the final one (HCM `drain_timeout`).
    pub http2_drain_timeout: Setting<Duration>,
    pub stream_probe: StreamProbe,
    /// None: JSON unless logs go to a terminal.
    pub log_format: Option<super::log_fields::LogFormat>,
    pub authorize_log_fields: super::log_fields::AuthorizeLogFields,
    /// The Envoy binary a managed Envoy runs (`envoy_binary`), resolved against the config's folder.
    pub envoy_binary: Option<PathBuf>,
}

/// The session cookie's attributes (read by the sign-in endpoints).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Hash)]
pub struct CookieSettings {
    pub http_only: bool,
    /// `None`: the attribute is left out (Pomerium's default, `""`).
    pub same_site: Option<SameSite>,
    /// `None`: a host-only cookie.
    pub domain: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

/// Pomerium's `runtime_flags`, every known flag with its value (written or default).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Hash)]
pub struct RuntimeFlags(pub BTreeMap<String, bool>);

impl RuntimeFlags {
    /// A known flag's value; unknown names are false.
    pub fn get(&self, flag: &str) -> bool {
        self.0.get(flag).copied().unwrap_or(false)
    }
}

/// What happens to a request without a valid client certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum MtlsEnforcement {
    /// Only the route's policy decides (`client_certificate`, `invalid_client_certificate`).
    Policy,
    /// As `policy`, plus a deny for every request without a valid certificate (495).
    PolicyWithDefaultDeny,
    /// The TLS handshake fails without a certificate the CA signed.
    RejectConnection,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum SanType {
    Email,
    Dns,
    Uri,
    IpAddress,
    UserPrincipalName,
}

/// One `match_subject_alt_names` entry: a SAN of this type must fully match the regex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Hash)]
pub struct SanMatcher {
    pub san_type: SanType,
    pub pattern: String,
}

/// `downstream_mtls`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Hash)]
pub struct DownstreamMtls {
    pub ca_file: Option<PathBuf>,
    pub crl_file: Option<PathBuf>,
    pub enforcement: MtlsEnforcement,
    pub match_subject_alt_names: Vec<SanMatcher>,
    /// Longest chain above the leaf; 0: no limit. Pomerium's default is 1.
    pub max_verify_depth: u32,
}

/// How ext_authz checks a route's client certificates: the CA that applies to the route
/// (its own `tls_downstream_client_ca`, else `downstream_mtls.ca`) and the constraints.
#[derive(Clone, Debug, Serialize)]
pub struct ClientCertCheck {
    /// The PEM file the roots came from (what identifies the check in hashes and output).
    pub ca_file: PathBuf,
    #[serde(skip)]
    pub roots_der: Vec<Vec<u8>>,
    #[serde(skip)]
    pub crls_der: Vec<Vec<u8>>,
    pub match_subject_alt_names: Vec<SanMatcher>,
    pub max_verify_depth: u32,
    /// Requests without a valid certificate are denied whatever the policy says (Pomerium's
    /// `policy_with_default_deny` and `reject_connection` add such a deny rule).
    pub default_deny: bool,
}

impl PartialEq for ClientCertCheck {
    fn eq(&self, other: &Self) -> bool {
        self.roots_der == other.roots_der
            && self.crls_der == other.crls_der
            && self.match_subject_alt_names == other.match_subject_alt_names
            && self.max_verify_depth == other.max_verify_depth
            && self.default_deny == other.default_deny
    }
}

/// By content, not path: the same CA written elsewhere checks the same.
impl Hash for ClientCertCheck {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.roots_der.hash(state);
        self.crls_der.hash(state);
        self.match_subject_alt_names.hash(state);
        self.max_verify_depth.hash(state);
        self.default_deny.hash(state);
    }
}

/// Who may open sluice's SSE test stream at `/.sluice/stream-probe` on route hosts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum StreamProbe {
    /// Whoever the route that would serve the path lets in.
    #[default]
    Policy,
    /// Anyone.
    Public,
    /// Nobody: the path is not routed to sluice.
    Off,
}

/// A route's host match, from `from`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Hash)]
pub struct FromUrl {
    pub scheme: String,
    /// Lowercase; may start with `*.` (a wildcard subdomain) or be `*`.
    pub host: String,
    pub port: Option<u16>,
}

/// `https://app.example.com`, with `:port` when one was given.
impl std::fmt::Display for FromUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum PathMatch {
    Prefix(String),
    Exact(String),
    Regex(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamScheme {
    Http,
    Https,
    H2c,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Hash)]
pub struct Upstream {
    pub scheme: UpstreamScheme,
    pub host: String,
    pub port: u16,
    pub weight: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Default, Hash)]
#[serde(rename_all = "snake_case")]
pub enum LbPolicy {
    #[default]
    RoundRobin,
    LeastRequest,
    Random,
    RingHash,
    Maglev,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Hash)]
pub struct UpstreamTls {
    pub skip_verify: bool,
    pub server_name: Option<String>,
    pub custom_ca_file: Option<PathBuf>,
    pub client_cert: Option<CertificatePair>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum PathRewrite {
    None,
    Prefix(String),
    Regex {
        pattern: String,
        substitution: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum HostRewrite {
    /// The upstream's host name (Envoy's `auto_host_rewrite`), Pomerium's default.
    Auto,
    Literal(String),
    Header(String),
    PathRegex {
        pattern: String,
        substitution: String,
    },
    /// `preserve_host_header`: the client's Host goes upstream unchanged.
    Preserve,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Hash)]
pub struct Forward {
    pub upstreams: Vec<Upstream>,
    pub lb_policy: LbPolicy,
    pub tls: UpstreamTls,
    pub path_rewrite: PathRewrite,
    pub host_rewrite: HostRewrite,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Hash)]
pub struct Redirect {
    pub https_redirect: bool,
    pub scheme_redirect: Option<String>,
    pub host_redirect: Option<String>,
    pub port_redirect: Option<u16>,
    pub path_redirect: Option<String>,
    pub prefix_rewrite: Option<String>,
    pub response_code: u16,
    pub strip_query: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Hash)]
pub struct DirectResponse {
    pub status: u16,
    pub body: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum RouteAction {
    Forward(Forward),
    Redirect(Redirect),
    Respond(DirectResponse),
}

/// One validated route.
#[derive(Clone, Debug, Serialize)]
pub struct Route {
    /// The `id` key, or a hash of what identifies the route (as Pomerium derives it).
    pub id: String,
    pub name: Option<String>,
    /// Position in the file and the line the route starts on (not part of the route's
    /// checksum: moving a route does not change what it does).
    #[serde(skip)]
    pub index: usize,
    #[serde(skip)]
    pub line: usize,
    pub from: FromUrl,
    pub path_match: PathMatch,
    pub action: RouteAction,
    /// Header name → compiled value template (applied by ext_authz on allowed requests).
    pub set_request_headers: Arc<BTreeMap<String, Template>>,
    /// Lowercase, sorted, unique.
    pub remove_request_headers: Vec<String>,
    /// The global `set_response_headers` with this route's merged over them (shared with
    /// the global set when the route adds none).
    pub set_response_headers: Arc<BTreeMap<String, String>>,
    /// Only when the route sets `timeout` itself.
    pub timeout: Option<Setting<Duration>>,
    pub idle_timeout: Option<Setting<Duration>>,
    pub allow_websockets: bool,
    pub allow_spdy: bool,
    pub pass_identity_headers: bool,
    pub bearer_token_format: BearerTokenFormat,
    /// Shared with every route whose policy is the same (`config::shared`).
    pub policy: Arc<Policy>,
    pub depends_on: Vec<String>,
    /// Set when a client CA applies to the route: ext_authz verifies certificates with it.
    pub client_certificate: Option<Arc<ClientCertCheck>>,
}

/// Everything that decides what the route does, and nothing about where it is written, so
/// moving a route in the file keeps its checksum. Destructured so a new field cannot be
/// forgotten here.
impl Hash for Route {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let Route {
            id,
            name,
            index: _,
            line: _,
            from,
            path_match,
            action,
            set_request_headers,
            remove_request_headers,
            set_response_headers,
            timeout,
            idle_timeout,
            allow_websockets,
            allow_spdy,
            pass_identity_headers,
            bearer_token_format,
            policy,
            depends_on,
            client_certificate,
        } = self;
        id.hash(state);
        name.hash(state);
        from.hash(state);
        path_match.hash(state);
        action.hash(state);
        set_request_headers.hash(state);
        remove_request_headers.hash(state);
        set_response_headers.hash(state);
        timeout.hash(state);
        idle_timeout.hash(state);
        allow_websockets.hash(state);
        allow_spdy.hash(state);
        pass_identity_headers.hash(state);
        bearer_token_format.hash(state);
        policy.hash(state);
        depends_on.hash(state);
        // Only when set, so routes without client certificates keep their checksums.
        if let Some(check) = client_certificate {
            check.hash(state);
        }
    }
}

impl Route {
    /// Changes whenever anything the route does changes; Envoy carries it to ext_authz so a
    /// decision made on an older route table can be noticed.
    /// File paths count as written relative to `config_dir`, so a checkout elsewhere agrees.
    pub fn checksum(&self, config_dir: &Path) -> String {
        let mut portable = self.clone();
        let relative = |p: &mut PathBuf| *p = crate::hashing::portable_path(p, config_dir);
        if let Some(check) = portable.client_certificate.as_mut() {
            relative(&mut Arc::make_mut(check).ca_file);
        }
        if let RouteAction::Forward(f) = &mut portable.action {
            if let Some(ca) = f.tls.custom_ca_file.as_mut() {
                relative(ca);
            }
            if let Some(pair) = f.tls.client_cert.as_mut() {
                relative(&mut pair.cert);
                relative(&mut pair.key);
            }
        }
        crate::hashing::content_hash(&portable)
    }

    /// Whether ext_authz's answer is known in advance: always allow, adding nothing. Such
    /// routes skip the call, so they keep working while sluice restarts.
    pub fn authz_is_constant(&self) -> bool {
        self.policy.always_allows()
            && self.set_request_headers.is_empty()
            && !self.pass_identity_headers
            // The default deny on client certificates is decided by ext_authz.
            && !self
                .client_certificate
                .as_ref()
                .is_some_and(|c| c.default_deny)
    }

    /// The readable label used in messages: the name, else the `from` URL.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => n.clone(),
            None => self.from.to_string(),
        }
    }
}
