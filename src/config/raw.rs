//! The config file as written: Pomerium's key names, every key known, every value spanned.
//! Nothing here is interpreted; `validate` turns it into the typed `Model`.

use super::duration::GoDuration;
use super::secret::Secret;
use crate::document::decode::{
    Decode, KeyHints, KeyPath, Pairs, StringList, raw_struct, wrong_type,
};
use crate::document::diag::Diagnostics;
use crate::document::yaml::{Node, NodeKind};

/// Pomerium global settings sluice does not implement (an error names them, rather than
/// "unknown key", so a Pomerium user knows the key was understood and is not supported).
const UNSUPPORTED_GLOBAL: &[&str] = &[
    "autocert",
    "autocert_dir",
    "autocert_must_staple",
    "autocert_use_staging",
    "certificate",
    "certificate_key",
    "client_ca",
    "client_ca_file",
    "downstream_mtls",
    "databroker_service_url",
    "databroker_service_urls",
    "databroker_storage_type",
    "databroker_storage_connection_string",
    "authenticate_internal_service_url",
    "authorize_service_urls",
    "authorize_internal_service_url",
    "signout_redirect_url",
    "use_proxy_protocol",
    "skip_xff_append",
    "xff_num_trusted_hops",
    "tracing_provider",
    "tracing_sample_rate",
    "idp_request_params",
    "idp_access_token_allowed_audiences",
    "identity_providers",
    "idp_service_account",
    "cookie_domain",
    "cookie_same_site",
    "cookie_http_only",
    "jwt_groups_filter",
    "jwt_issuer_format",
    "allow_upgrades",
    "circuit_breaker_thresholds",
    "dns_lookup_family",
    "headers",
    "grpc_insecure",
    "health_check_addr",
    "metrics_basic_auth",
    "metrics_certificate",
    "metrics_certificate_key",
    "metrics_client_ca",
    "envoy_admin_access_log_path",
    "envoy_admin_profile_path",
    "envoy_bind_config_source_address",
    "envoy_bind_config_freebind",
    "proxy_log_level",
    "access_log_fields",
    "authorization_log_fields",
    "forward_auth_url",
    "audit_key",
];

/// Keys that are route settings, for a helpful message when written at the top level.
const ROUTE_ONLY: &[&str] = &[
    "from",
    "timeout",
    "to",
    "redirect",
    "response",
    "prefix",
    "path",
    "regex",
    "prefix_rewrite",
    "regex_rewrite_pattern",
    "regex_rewrite_substitution",
    "host_rewrite",
    "host_rewrite_header",
    "preserve_host_header",
    "set_request_headers",
    "remove_request_headers",
    "idle_timeout",
    "allow_websockets",
    "allow_spdy",
    "tls_skip_verify",
    "tls_server_name",
    "tls_custom_ca_file",
    "load_balancing_policy",
    "allowed_users",
    "allowed_domains",
    "allowed_idp_claims",
    "allow_public_unauthenticated_access",
    "allow_any_authenticated_user",
    "cors_allow_preflight",
];

/// Keys that are global settings, for a helpful message when written inside a route.
const GLOBAL_ONLY: &[&str] = &[
    "address",
    "insecure_server",
    "http_redirect_addr",
    "certificates",
    "certificate_file",
    "certificate_key_file",
    "codec_type",
    "timeout_read",
    "timeout_write",
    "timeout_idle",
    "default_upstream_timeout",
    "grpc_address",
    "grpc_client_timeout",
    "metrics_address",
    "envoy_admin_address",
    "authenticate_service_url",
    "shared_secret",
    "cookie_secret",
    "cookie_name",
    "cookie_expire",
    "signing_key",
    "jwt_claims_headers",
    "log_level",
    "routes",
];

const UNSUPPORTED_ROUTE: &[&str] = &[
    "tls_custom_ca",
    "tls_client_cert",
    "tls_client_key",
    "tls_downstream_client_ca",
    "tls_downstream_client_ca_file",
    "tls_downstream_server_name",
    "tls_upstream_allow_renegotiation",
    "allow_renegotiation",
    "kubernetes_service_account_token",
    "kubernetes_service_account_token_file",
    "enable_google_cloud_serverless_authentication",
    "rewrite_response_headers",
    "jwt_groups_filter",
    "jwt_groups_filter_infer_from_ppl",
    "jwt_issuer_format",
    "sub_policies",
    "show_error_details",
    "health_checks",
    "outlier_detection",
    "healthy_panic_threshold",
    "circuit_breaker_thresholds",
    "allow_upgrades",
    "idp_client_id",
    "idp_client_secret",
    "idp_access_token_allowed_audiences",
    "identity_providers",
    "mcp",
    "upstream_tunnel",
    "regex_priority_order",
    "allowed_groups",
    "set_authorization_header",
    "stat_name",
];

raw_struct! {
    /// Top-level settings (Pomerium's `config.yaml`).
    pub struct RawConfig hints(KeyHints {
        unsupported: UNSUPPORTED_GLOBAL,
        elsewhere: &[(ROUTE_ONLY, "inside an entry of `routes`")],
    }) {
        address: String,
        insecure_server: bool,
        http_redirect_addr: String,
        certificates: Vec<RawCertificate>,
        certificate_file: String,
        certificate_key_file: String,
        certificate_authority_file: String,
        codec_type: String,
        timeout_read: GoDuration,
        timeout_write: GoDuration,
        timeout_idle: GoDuration,
        default_upstream_timeout: GoDuration,
        grpc_address: String,
        grpc_client_timeout: GoDuration,
        metrics_address: String,
        envoy_admin_address: String,
        authenticate_service_url: String,
        authorize_service_url: String,
        idp_provider: String,
        idp_provider_url: String,
        idp_client_id: String,
        idp_client_secret: Secret,
        idp_client_secret_file: String,
        idp_scopes: StringList,
        shared_secret: Secret,
        shared_secret_file: String,
        cookie_secret: Secret,
        cookie_secret_file: String,
        cookie_name: String,
        cookie_expire: GoDuration,
        signing_key: Secret,
        signing_key_file: String,
        jwt_claims_headers: Node,
        pass_identity_headers: bool,
        set_response_headers: Pairs<Spanned<String>>,
        bearer_token_format: String,
        log_level: String,
        services: String,
        sluice_drain_time: GoDuration,
        sluice_http2_drain_timeout: GoDuration,
        sluice_stream_probe: String,
        /// Decoded one by one (as `RawRoute`) while validating, so a large file never holds
        /// every raw route at once.
        routes: Vec<Node>,
        policy: Vec<Node>,
        log_format: String,
        authorize_log_fields: StringList,
        /// The Envoy binary `sluice serve` runs (managed mode); relative to the config file.
        envoy_binary: String,
    }
}

raw_struct! {
    /// One entry of `routes` (or the legacy `policy` list).
    pub struct RawRoute hints(KeyHints {
        unsupported: UNSUPPORTED_ROUTE,
        elsewhere: &[(GLOBAL_ONLY, "at the top level of the file, not inside a route")],
    }) {
        from: String,
        to: OneOrMany,
        redirect: RawRedirect,
        response: RawResponse,
        prefix: String,
        path: String,
        regex: String,
        prefix_rewrite: String,
        regex_rewrite_pattern: String,
        regex_rewrite_substitution: String,
        host_rewrite: String,
        host_rewrite_header: String,
        host_path_regex_rewrite_pattern: String,
        host_path_regex_rewrite_substitution: String,
        preserve_host_header: bool,
        set_request_headers: Pairs<Spanned<String>>,
        remove_request_headers: StringList,
        set_response_headers: Pairs<Spanned<String>>,
        timeout: GoDuration,
        idle_timeout: GoDuration,
        allow_websockets: bool,
        allow_spdy: bool,
        tls_skip_verify: bool,
        tls_server_name: String,
        tls_upstream_server_name: String,
        tls_custom_ca_file: String,
        tls_client_cert_file: String,
        tls_client_key_file: String,
        pass_identity_headers: bool,
        load_balancing_policy: String,
        policy: Node,
        allowed_users: StringList,
        allowed_domains: StringList,
        allowed_idp_claims: Pairs<Node>,
        allow_public_unauthenticated_access: bool,
        allow_any_authenticated_user: bool,
        cors_allow_preflight: bool,
        bearer_token_format: String,
        depends_on: StringList,
        name: String,
        id: String,
        description: String,
        logo_url: String,
    }
}

raw_struct! {
    /// A route's `redirect` block (Envoy's RedirectAction, by Pomerium's names).
    pub struct RawRedirect hints(crate::document::decode::NO_HINTS) {
        https_redirect: bool,
        scheme_redirect: String,
        host_redirect: String,
        port_redirect: u32,
        path_redirect: String,
        prefix_rewrite: String,
        response_code: u32,
        strip_query: bool,
    }
}

raw_struct! {
    /// A route's `response` block: a fixed reply.
    pub struct RawResponse hints(crate::document::decode::NO_HINTS) {
        status: u32,
        body: String,
    }
}

raw_struct! {
    /// One entry of `certificates`: paths to a PEM certificate chain and its key.
    pub struct RawCertificate hints(crate::document::decode::NO_HINTS) {
        cert: String,
        key: String,
    }
}

use crate::document::decode::Spanned;

/// `to` is one URL or a list of them; entries may end in `,<weight>`, so no comma splitting.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OneOrMany {
    pub items: Vec<Spanned<String>>,
    /// Written as a list (diagnostics then name `to[i]`).
    pub list: bool,
}

impl Decode for OneOrMany {
    fn decode(node: Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<Self> {
        match &node.kind {
            NodeKind::Seq(_) => Vec::<Spanned<String>>::decode(node, path, diags)
                .map(|items| OneOrMany { items, list: true }),
            _ if node.as_scalar().is_some() => {
                Spanned::<String>::decode(node, path, diags).map(|item| OneOrMany {
                    items: vec![item],
                    list: false,
                })
            }
            _ => {
                wrong_type(&node, path, diags, "a URL or a list of URLs");
                None
            }
        }
    }
}
