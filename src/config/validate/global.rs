//! Global settings: defaults as Pomerium's, checks as Pomerium's (and a few sluice adds).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use super::addr::{connect_host, parse_listen_addr};
use super::files::{PemKind, check_pem, read_secret, resolve, system_ca_bundle};
use super::headers::{check_header_name, response_headers};
use super::pem::{Content, Inline, source};
use crate::config::duration::GoDuration;
use crate::config::model::{
    BearerTokenFormat, CertificatePair, CodecType, Global, IdentityProvider, LogLevel,
    ServiceAddress, Setting,
};
use crate::config::raw::RawConfig;
use crate::config::secret::Secret;
use crate::document::decode::{KeyPath, Spanned};
use crate::document::diag::{Diagnostics, Span};
use crate::document::yaml::{Node, NodeKind};

const DEFAULT_GRPC_ADDRESS: &str = "127.0.0.1:5443";
const DEFAULT_ADMIN_ADDRESS: &str = "127.0.0.1:9901";

pub(super) fn validate_global(raw: &RawConfig, base: &Path, diags: &mut Diagnostics) -> Global {
    let root = KeyPath::root();
    let insecure_server = raw.insecure_server.as_ref().is_some_and(|b| b.value);
    let default_port = if insecure_server { 80 } else { 443 };

    let address = listen(&raw.address, "address", Some(default_port), diags)
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], default_port)));
    let http_redirect_addr = raw.http_redirect_addr.as_ref().and_then(|_| {
        listen(
            &raw.http_redirect_addr,
            "http_redirect_addr",
            Some(80),
            diags,
        )
    });
    if let (Some(redirect), true) = (http_redirect_addr, insecure_server) {
        let span = raw
            .http_redirect_addr
            .as_ref()
            .map(|s| s.span)
            .unwrap_or_default();
        diags.warning(span, root.key("http_redirect_addr"), format!(
            "with insecure_server the main listener is plain HTTP too; {redirect} will redirect clients to https:// on {address}, which does not speak TLS"));
    }

    let certificates = certificates(raw, base, insecure_server, diags);
    let self_signed = !insecure_server && certificates.is_empty() && !diags.has_errors();
    let certificates = if self_signed {
        match crate::config::generated::self_signed() {
            Ok(pair) => vec![pair],
            Err(e) => {
                diags.error(Span::new(1, 1), "certificates", e);
                Vec::new()
            }
        }
    } else {
        certificates
    };
    let certificate_authority_file =
        if raw.certificate_authority.is_some() || raw.certificate_authority_file.is_some() {
            source(
                Inline::of("certificate_authority", raw.certificate_authority.as_ref()),
                raw.certificate_authority_file
                    .as_ref()
                    .map(|f| ("certificate_authority_file", f)),
                Content::Pem(PemKind::Certificate),
                "certificate-authority",
                &root,
                base,
                diags,
            )
        } else {
            system_ca_bundle()
        };
    let downstream_mtls = raw
        .downstream_mtls
        .as_ref()
        .map(|m| super::mtls::downstream_mtls(m, base, diags));
    if let (Some(m), true) = (&raw.downstream_mtls, insecure_server) {
        diags.error(m.span, root.key("downstream_mtls"), "downstream_mtls needs TLS, but insecure_server is true: client certificates are part of the TLS handshake");
    }

    let codec_type = match &raw.codec_type {
        None => CodecType::Auto,
        Some(c) => match c
            .value
            .to_ascii_lowercase()
            .trim_start_matches("codec_type_")
        {
            "auto" | "" => CodecType::Auto,
            "http1" => CodecType::Http1,
            "http2" => CodecType::Http2,
            "http3" => CodecType::Http3,
            _ => {
                diags.error(
                    c.span,
                    root.key("codec_type"),
                    format!(
                        "`{}` is not a codec type; use auto, http1, http2 or http3",
                        c.value
                    ),
                );
                CodecType::Auto
            }
        },
    };
    if codec_type == CodecType::Http3 && insecure_server {
        let span = raw.codec_type.as_ref().map(|c| c.span).unwrap_or_default();
        diags.error(
            span,
            root.key("codec_type"),
            "codec_type http3 needs TLS (QUIC is always encrypted), but insecure_server is true",
        );
    }

    let timeout_read = duration(&raw.timeout_read, "timeout_read", Duration::from_secs(30));
    let timeout_write = duration(&raw.timeout_write, "timeout_write", Duration::ZERO);
    let timeout_idle = duration(&raw.timeout_idle, "timeout_idle", Duration::from_secs(300));
    let default_upstream_timeout = duration(
        &raw.default_upstream_timeout,
        "default_upstream_timeout",
        Duration::from_secs(30),
    );
    check_read_write(raw, &timeout_read, &timeout_write, diags);
    if !timeout_write.value.is_zero()
        && (default_upstream_timeout.value.is_zero()
            || default_upstream_timeout.value > timeout_write.value)
    {
        let span = raw
            .default_upstream_timeout
            .as_ref()
            .or(raw.timeout_write.as_ref())
            .map(|s| s.span)
            .unwrap_or_default();
        diags.warning(span, root.key("default_upstream_timeout"), format!(
            "default_upstream_timeout ({}) is longer than timeout_write ({}): timeout_write ends every request and stream at {}, so routes that rely on the default never reach it",
            show(default_upstream_timeout.value), show(timeout_write.value), show(timeout_write.value)));
    }

    let mut grpc_client_timeout = duration(
        &raw.grpc_client_timeout,
        "grpc_client_timeout",
        Duration::from_secs(10),
    );
    if grpc_client_timeout.value.is_zero() {
        // Pomerium replaces 0 with 30s: ext_authz must not wait forever.
        grpc_client_timeout.value = Duration::from_secs(30);
    }

    let grpc_address =
        listen(&raw.grpc_address, "grpc_address", None, diags).unwrap_or_else(|| {
            DEFAULT_GRPC_ADDRESS
                .parse()
                .expect("default grpc address parses")
        });
    let authorize_service = match &raw.authorize_service_url {
        Some(u) => service_url(u, diags).unwrap_or_else(|| loopback_service(&grpc_address)),
        None => loopback_service(&grpc_address),
    };
    let metrics_address = raw.metrics_address.as_ref().and_then(|m| {
        parse_listen_addr(&m.value, None)
            .map_err(|e| {
                diags.error(
                    m.span,
                    root.key("metrics_address"),
                    format!("invalid metrics_address: expected host:port ({e})"),
                )
            })
            .ok()
    });
    let envoy_admin_address = listen(&raw.envoy_admin_address, "envoy_admin_address", None, diags)
        .unwrap_or_else(|| {
            DEFAULT_ADMIN_ADDRESS
                .parse()
                .expect("default admin address parses")
        });

    let authenticate_service_url = raw.authenticate_service_url.as_ref().and_then(|u| {
        match url::Url::parse(&u.value) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some() => Some(u.value.clone()),
            _ => {
                diags.error(u.span, root.key("authenticate_service_url"), format!(
                    "bad authenticate-url `{}`: expected an absolute https:// URL such as https://authenticate.example.com", u.value));
                None
            }
        }
    });

    let idp = identity_provider(raw, base, diags);
    let shared_secret = secret_bytes(
        &raw.shared_secret,
        &raw.shared_secret_file,
        "shared_secret",
        base,
        diags,
    );
    let cookie_secret = secret_bytes(
        &raw.cookie_secret,
        &raw.cookie_secret_file,
        "cookie_secret",
        base,
        diags,
    );
    let signing_key = signing_key(raw, base, diags);

    let cookie_name = match &raw.cookie_name {
        Some(n) if check_header_name(&n.value).is_err() || n.value.is_empty() => {
            diags.error(
                n.span,
                root.key("cookie_name"),
                format!(
                    "`{}` is not a valid cookie name (letters, digits and !#$%&'*+-.^_`|~ only)",
                    n.value
                ),
            );
            "_pomerium".into()
        }
        Some(n) => n.value.clone(),
        None => "_pomerium".into(),
    };
    let cookie_expire = match &raw.cookie_expire {
        Some(d) if d.value.is_zero() => {
            diags.error(
                d.span,
                root.key("cookie_expire"),
                "cookie_expire must be longer than 0s",
            );
            Duration::from_secs(14 * 3600)
        }
        Some(d) => d.value.0,
        None => Duration::from_secs(14 * 3600),
    };

    let jwt_claims_headers = raw
        .jwt_claims_headers
        .as_ref()
        .map(|n| claims_headers(&n.value, &root.key("jwt_claims_headers"), diags))
        .unwrap_or_default();

    let set_response_headers = response_headers(
        raw.set_response_headers.as_ref().map(|s| &s.value),
        &root.key("set_response_headers"),
        &Arc::new(default_response_headers(!insecure_server)),
        diags,
    );

    Global {
        address,
        insecure_server,
        http_redirect_addr,
        certificates,
        self_signed,
        certificate_authority_file,
        downstream_mtls,
        client_ca_bundle: None,
        codec_type,
        timeout_read,
        timeout_write,
        timeout_idle,
        default_upstream_timeout,
        grpc_address,
        grpc_client_timeout,
        authorize_service,
        metrics_address,
        envoy_admin_address,
        authenticate_service_url,
        idp,
        shared_secret,
        cookie_secret,
        cookie_name,
        cookie_expire,
        cookie: super::session::cookie(raw, diags),
        signout_redirect_url: super::session::signout_redirect_url(raw, diags),
        programmatic_redirect_domain_whitelist: super::session::redirect_whitelist(raw, diags),
        runtime_flags: super::session::runtime_flags(raw, diags),
        signing_key,
        jwt_claims_headers,
        pass_identity_headers: raw.pass_identity_headers.as_ref().is_some_and(|b| b.value),
        set_response_headers,
        bearer_token_format: raw
            .bearer_token_format
            .as_ref()
            .map(|f| bearer_token_format(f, &root.key("bearer_token_format"), diags))
            .unwrap_or_default(),
        log_level: log_level(raw, diags),
        drain_time: super::streams::drain_time(raw, diags),
        http2_drain_timeout: super::streams::http2_drain_timeout(raw, diags),
        stream_probe: super::streams::stream_probe(raw, diags),
        log_format: crate::config::log_fields::log_format(raw.log_format.as_ref(), diags),
        authorize_log_fields: crate::config::log_fields::authorize_log_fields(
            raw.authorize_log_fields.as_ref(),
            diags,
        ),
        envoy_binary: raw
            .envoy_binary
            .as_ref()
            .map(|b| super::files::resolve(base, &b.value)),
    }
    .with_services_checked(raw, diags)
}

impl Global {
    fn with_services_checked(self, raw: &RawConfig, diags: &mut Diagnostics) -> Self {
        if let Some(s) = &raw.services
            && !s.value.split(',').all(|part| part.trim() == "all")
        {
            diags.error(s.span, "services", format!(
                    "sluice runs every service (proxy, authorize, authenticate) in one process; `services` may only be `all`, not `{}`", s.value));
        }
        self
    }
}

fn listen(
    raw: &Option<Spanned<String>>,
    key: &str,
    default_port: Option<u16>,
    diags: &mut Diagnostics,
) -> Option<SocketAddr> {
    let value = raw.as_ref()?;
    parse_listen_addr(&value.value, default_port)
        .map_err(|e| {
            diags.error(
                value.span,
                key,
                format!("`{}` is not a valid address: {e}", value.value),
            )
        })
        .ok()
}

fn loopback_service(grpc: &SocketAddr) -> ServiceAddress {
    ServiceAddress {
        host: connect_host(grpc),
        port: grpc.port(),
        tls: false,
    }
}

fn service_url(u: &Spanned<String>, diags: &mut Diagnostics) -> Option<ServiceAddress> {
    let parsed = url::Url::parse(&u.value)
        .ok()
        .filter(|p| matches!(p.scheme(), "http" | "https") && p.host_str().is_some());
    let Some(parsed) = parsed else {
        diags.error(u.span, "authorize_service_url", format!(
            "`{}` is not a valid URL; write where Envoy reaches sluice's gRPC port, as in http://sluice:5443", u.value));
        return None;
    };
    let tls = parsed.scheme() == "https";
    Some(ServiceAddress {
        host: parsed
            .host_str()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port: parsed.port().unwrap_or(if tls { 443 } else { 80 }),
        tls,
    })
}

pub(super) fn duration(
    raw: &Option<Spanned<GoDuration>>,
    key: &str,
    default: Duration,
) -> Setting<Duration> {
    match raw {
        Some(d) => Setting::written(d.value.0, key, d.span.line as usize),
        None => Setting::default(default, key),
    }
}

pub fn show(d: Duration) -> String {
    GoDuration(d).to_string()
}

/// Both timeouts 0 means both disabled, which is valid (unlike the ingress controller's
/// "read timeout (0s) must be less than write timeout (0s)"). Only two real limits are
/// compared.
fn check_read_write(
    raw: &RawConfig,
    read: &Setting<Duration>,
    write: &Setting<Duration>,
    diags: &mut Diagnostics,
) {
    let (r, w) = (read.value, write.value);
    if r.is_zero() || w.is_zero() || r < w {
        return;
    }
    let span = raw
        .timeout_read
        .as_ref()
        .or(raw.timeout_write.as_ref())
        .map(|s| s.span)
        .unwrap_or_default();
    diags.error(span, "timeout_read", format!(
        "timeout_read ({}) must be less than timeout_write ({}): timeout_write limits the whole request and response, so it would end every request before the read timeout could apply; raise timeout_write, or set it to 0s (no limit, the default) to allow long-lived streams",
        show(r), show(w)));
}

fn certificates(
    raw: &RawConfig,
    base: &Path,
    insecure: bool,
    diags: &mut Diagnostics,
) -> Vec<CertificatePair> {
    let mut pairs = Vec::new();
    let mut check = |cert: &Spanned<String>,
                     key: &Spanned<String>,
                     path: KeyPath,
                     cert_key: &'static str,
                     key_key: &'static str,
                     diags: &mut Diagnostics| {
        let (c, k) = (resolve(base, &cert.value), resolve(base, &key.value));
        if let Err(e) = check_pem(&c, PemKind::Certificate) {
            diags.error(cert.span, path.key(cert_key), format!("bad cert file: {e}"));
        }
        if let Err(e) = check_pem(&k, PemKind::PrivateKey) {
            diags.error(key.span, path.key(key_key), format!("bad key file: {e}"));
        }
        pairs.push(CertificatePair { cert: c, key: k });
    };
    for (i, entry) in raw
        .certificates
        .iter()
        .flat_map(|c| c.value.iter())
        .enumerate()
    {
        let path = KeyPath::root().key("certificates").index(i);
        match (&entry.cert, &entry.key) {
            (Some(c), Some(k)) => check(c, k, path, "cert", "key", diags),
            _ => diags.error(
                entry.span,
                path,
                "bad cert entry: each entry needs both `cert` and `key` (paths to PEM files)",
            ),
        }
    }
    match (&raw.certificate_file, &raw.certificate_key_file) {
        (Some(c), Some(k)) => check(
            c,
            k,
            KeyPath::root(),
            "certificate_file",
            "certificate_key_file",
            diags,
        ),
        (Some(one), None) | (None, Some(one)) => diags.error(
            one.span,
            "certificate_file",
            "certificate_file and certificate_key_file go together; set both",
        ),
        (None, None) => {}
    }
    match (&raw.certificate, &raw.certificate_key) {
        (Some(c), Some(k)) => {
            let root = KeyPath::root();
            let key_text = Spanned::new(k.value.expose().to_string(), k.span);
            let cert = source(
                Inline::of("certificate", Some(c)),
                None,
                Content::Pem(PemKind::Certificate),
                "certificate",
                &root,
                base,
                diags,
            );
            let key = source(
                Inline::of("certificate_key", Some(&key_text)),
                None,
                Content::Pem(PemKind::PrivateKey),
                "certificate-key",
                &root,
                base,
                diags,
            );
            if let (Some(cert), Some(key)) = (cert, key) {
                pairs.push(CertificatePair { cert, key });
            }
        }
        (Some(one), None) => diags.error(
            one.span,
            "certificate",
            "certificate and certificate_key go together (both base64 PEM); set both",
        ),
        (None, Some(one)) => diags.error(
            one.span,
            "certificate_key",
            "certificate and certificate_key go together (both base64 PEM); set both",
        ),
        (None, None) => {}
    }
    if insecure && !pairs.is_empty() {
        let span = raw
            .insecure_server
            .as_ref()
            .map(|s| s.span)
            .unwrap_or_default();
        diags.warning(
            span,
            "insecure_server",
            "insecure_server is true, so the configured certificates are not used",
        );
    }
    let configured = raw.certificates.is_some()
        || raw.certificate_file.is_some()
        || raw.certificate_key_file.is_some()
        || raw.certificate.is_some()
        || raw.certificate_key.is_some();
    if !insecure && !configured {
        // As Pomerium: serve a generated certificate, and say so.
        diags.warning(raw.address.as_ref().map(|a| a.span).unwrap_or(Span::new(1, 1)), "certificates",
            "no TLS certificate is configured, so sluice serves a generated self-signed certificate that browsers will not trust: add `certificates` (or `certificate_file` and `certificate_key_file`), or set `insecure_server: true` to serve plain HTTP");
    }
    if insecure { Vec::new() } else { pairs }
}

fn secret_value(
    value: &Option<Spanned<Secret>>,
    file: &Option<Spanned<String>>,
    key: &str,
    base: &Path,
    diags: &mut Diagnostics,
) -> Option<Spanned<Secret>> {
    match (value, file) {
        (Some(v), Some(f)) => {
            diags.error(
                f.span,
                format!("{key}_file"),
                format!("set either {key} or {key}_file, not both"),
            );
            Some(v.clone())
        }
        (Some(v), None) => Some(v.clone()),
        (None, Some(f)) => match read_secret(&resolve(base, &f.value)) {
            Ok(s) => Some(Spanned::new(Secret::new(s), f.span)),
            Err(e) => {
                diags.error(f.span, format!("{key}_file"), e);
                None
            }
        },
        (None, None) => None,
    }
}

/// Pomerium's shared and cookie secrets: base64 of exactly 32 bytes, no whitespace.
fn secret_bytes(
    value: &Option<Spanned<Secret>>,
    file: &Option<Spanned<String>>,
    key: &str,
    base: &Path,
    diags: &mut Diagnostics,
) -> Option<Secret> {
    let secret = secret_value(value, file, key, base, diags)?;
    let text = secret.value.expose();
    if text.chars().any(char::is_whitespace) {
        diags.error(
            secret.span,
            key,
            format!("invalid {key}: the secret contains whitespace"),
        );
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(text)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text));
    match decoded {
        Ok(bytes) if bytes.len() == 32 => Some(secret.value),
        Ok(bytes) => {
            diags.error(secret.span, key, format!(
                "invalid {key}: it must be 32 random bytes, base64-encoded (for example from `head -c32 /dev/urandom | base64`), but it decodes to {} bytes", bytes.len()));
            None
        }
        Err(_) => {
            diags.error(secret.span, key, format!("invalid {key}: the value is not base64 (generate one with `head -c32 /dev/urandom | base64`)"));
            None
        }
    }
}

/// `signing_key`: a base64-encoded PEM EC private key (as Pomerium), or the PEM itself.
fn signing_key(raw: &RawConfig, base: &Path, diags: &mut Diagnostics) -> Option<Secret> {
    let secret = secret_value(
        &raw.signing_key,
        &raw.signing_key_file,
        "signing_key",
        base,
        diags,
    )?;
    let text = secret.value.expose();
    let pem = if text.contains("-----BEGIN") {
        Some(text.to_string())
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    };
    use p256::pkcs8::DecodePrivateKey;
    let parses = |pem: &str| {
        p256::SecretKey::from_sec1_pem(pem).is_ok() || p256::SecretKey::from_pkcs8_pem(pem).is_ok()
    };
    match pem {
        Some(pem) if parses(&pem) => Some(Secret::new(pem)),
        _ => {
            diags.error(secret.span, "signing_key", "invalid signing_key: expected a PEM P-256 (prime256v1) EC private key, base64-encoded (for example `openssl ecparam -genkey -name prime256v1 | openssl ec | base64 -w0`)");
            None
        }
    }
}

const OIDC_PROVIDERS: &[&str] = &[
    "oidc", "auth0", "azure", "cognito", "google", "okta", "onelogin", "ping", "keycloak",
];

fn identity_provider(
    raw: &RawConfig,
    base: &Path,
    diags: &mut Diagnostics,
) -> Option<IdentityProvider> {
    let any =
        raw.idp_provider.is_some() || raw.idp_provider_url.is_some() || raw.idp_client_id.is_some();
    if !any {
        return None;
    }
    let provider = raw
        .idp_provider
        .as_ref()
        .map(|p| p.value.to_ascii_lowercase())
        .unwrap_or_else(|| "oidc".into());
    if let Some(p) = &raw.idp_provider
        && !OIDC_PROVIDERS.contains(&provider.as_str())
    {
        diags.error(p.span, "idp_provider", format!(
                "identity provider `{}` is not supported; sluice signs in through OpenID Connect: use one of {}", p.value, OIDC_PROVIDERS.join(", ")));
    }
    let url = match (&raw.idp_provider_url, provider.as_str()) {
        (Some(u), _) => {
            let ok = url::Url::parse(&u.value)
                .is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.host_str().is_some());
            if !ok {
                diags.error(
                    u.span,
                    "idp_provider_url",
                    format!(
                        "`{}` is not an absolute http(s) URL; give the OpenID issuer URL",
                        u.value
                    ),
                );
            }
            u.value.trim_end_matches('/').to_string()
        }
        (None, "google") => "https://accounts.google.com".into(),
        (None, _) => {
            let span = raw
                .idp_provider
                .as_ref()
                .or(raw.idp_client_id.as_ref())
                .map(|s| s.span)
                .unwrap_or_default();
            diags.error(
                span,
                "idp_provider_url",
                "idp_provider_url is required: the OpenID issuer URL of your identity provider",
            );
            String::new()
        }
    };
    let client_id = match &raw.idp_client_id {
        Some(c) => c.value.clone(),
        None => {
            let span = raw
                .idp_provider
                .as_ref()
                .or(raw.idp_provider_url.as_ref())
                .map(|s| s.span)
                .unwrap_or_default();
            diags.error(
                span,
                "idp_client_id",
                "idp_client_id is required when an identity provider is configured",
            );
            String::new()
        }
    };
    let client_secret = secret_value(
        &raw.idp_client_secret,
        &raw.idp_client_secret_file,
        "idp_client_secret",
        base,
        diags,
    )
    .map(|s| s.value);
    let scopes = match &raw.idp_scopes {
        Some(s) if !s.value.0.is_empty() => s
            .value
            .0
            .iter()
            .flat_map(|v| {
                v.value
                    .split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect(),
        _ => ["openid", "profile", "email", "offline_access"]
            .map(String::from)
            .to_vec(),
    };
    Some(IdentityProvider {
        provider,
        url,
        client_id,
        client_secret,
        scopes,
    })
}

/// `jwt_claims_headers`: a map header → claim, a list of claims, or a comma/space string.
/// List and string forms name the header `x-pomerium-claim-<claim>`.
fn claims_headers(
    node: &Node,
    path: &KeyPath,
    diags: &mut Diagnostics,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut add = |header: String, claim: String, span: Span, diags: &mut Diagnostics| {
        if let Err(e) = check_header_name(&header) {
            diags.error(
                span,
                path,
                format!("`{header}` has invalid header name: {e}"),
            );
        } else if out.insert(header.to_ascii_lowercase(), claim).is_some() {
            diags.error(
                span,
                path,
                format!("header `{header}` is given more than once"),
            );
        }
    };
    match &node.kind {
        NodeKind::Map(entries) => {
            for (k, v) in entries {
                match (k.as_str(), v.as_str()) {
                    (Some(h), Some(c)) => add(h.to_string(), c.to_string(), k.span, diags),
                    _ => diags.error(k.span, path, "expected `header: claim` pairs of strings"),
                }
            }
        }
        NodeKind::Seq(items) => {
            for item in items {
                match item.as_str() {
                    Some(c) => add(
                        format!("x-pomerium-claim-{c}"),
                        c.to_string(),
                        item.span,
                        diags,
                    ),
                    None => diags.error(
                        item.span,
                        path,
                        format!("expected a claim name, found {}", item.describe()),
                    ),
                }
            }
        }
        NodeKind::Scalar(s) => {
            for c in s.text.split([',', ' ']).filter(|c| !c.is_empty()) {
                add(
                    format!("x-pomerium-claim-{c}"),
                    c.to_string(),
                    node.span,
                    diags,
                );
            }
        }
    }
    out
}

/// Pomerium's default response headers; HSTS only when sluice serves TLS.
fn default_response_headers(tls: bool) -> BTreeMap<String, String> {
    let mut h = BTreeMap::from([
        ("X-Frame-Options".to_string(), "SAMEORIGIN".to_string()),
        ("X-XSS-Protection".to_string(), "1; mode=block".to_string()),
    ]);
    if tls {
        h.insert(
            "Strict-Transport-Security".into(),
            "max-age=31536000; includeSubDomains; preload".into(),
        );
    }
    h
}

pub(super) fn bearer_token_format(
    f: &Spanned<String>,
    path: &KeyPath,
    diags: &mut Diagnostics,
) -> BearerTokenFormat {
    match f.value.to_ascii_lowercase().as_str() {
        "" | "default" => BearerTokenFormat::Default,
        "idp_access_token" => BearerTokenFormat::IdpAccessToken,
        "idp_identity_token" => BearerTokenFormat::IdpIdentityToken,
        "jwt" => BearerTokenFormat::Jwt,
        _ => {
            diags.error(f.span, path, format!(
                "`{}` is not a bearer token format; use default, idp_access_token, idp_identity_token or jwt", f.value));
            BearerTokenFormat::Default
        }
    }
}

fn log_level(raw: &RawConfig, diags: &mut Diagnostics) -> LogLevel {
    let Some(l) = &raw.log_level else {
        return LogLevel::Info;
    };
    match l.value.to_ascii_lowercase().as_str() {
        "trace" => LogLevel::Trace,
        "debug" => LogLevel::Debug,
        "info" => LogLevel::Info,
        "warn" | "warning" => LogLevel::Warn,
        "error" | "fatal" | "panic" => LogLevel::Error,
        _ => {
            diags.error(
                l.span,
                "log_level",
                format!(
                    "`{}` is not a log level; use trace, debug, info, warn or error",
                    l.value
                ),
            );
            LogLevel::Info
        }
    }
}
