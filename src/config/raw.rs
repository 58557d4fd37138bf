//! The config file as written: Pomerium's key names, every key known, every value spanned.
//! Nothing here is interpreted; `validate` turns it into the typed `Model`.

use super::duration::GoDuration;
use super::secret::Secret;
use crate::document::decode::{
    Decode, KeyHints, KeyPath, Pairs, StringList, raw_struct, wrong_type,
};
use crate::document::diag::Diagnostics;
use crate::document::yaml::{Node, NodeKind};

const ACME: &str = "sluice does no ACME: the machines it is built for have no internet access; use `certificates` or `certificate_file`/`certificate_key_file`, or leave them out for a generated self-signed certificate";
const STATELESS: &str =
    "sluice is stateless: sessions live in the cookie, so there is no databroker";
const NO_TRACES: &str = "sluice does not export OpenTelemetry traces";
const ENVOY_DNS: &str = "upstream DNS uses Envoy's defaults";
const NO_SSH: &str = "sluice has no SSH proxy";
const NO_MCP: &str = "sluice does not implement MCP";

/// Pomerium global settings sluice does not implement, with why (an error names them, rather
/// than "unknown key", so a Pomerium user knows the key was understood and is not supported).
pub const UNSUPPORTED_GLOBAL: &[(&str, &str)] = &[
    ("autocert", ACME),
    ("autocert_ca", ACME),
    ("autocert_dir", ACME),
    ("autocert_eab_key_id", ACME),
    ("autocert_eab_mac_key", ACME),
    ("autocert_email", ACME),
    ("autocert_must_staple", ACME),
    ("autocert_trusted_ca", ACME),
    ("autocert_trusted_ca_file", ACME),
    ("autocert_use_staging", ACME),
    (
        "client_ca",
        "Pomerium's old name, removed from Pomerium; use `downstream_mtls.ca`",
    ),
    (
        "client_ca_file",
        "Pomerium's old name, removed from Pomerium; use `downstream_mtls.ca_file`",
    ),
    ("databroker_service_url", STATELESS),
    ("databroker_service_urls", STATELESS),
    ("databroker_internal_service_url", STATELESS),
    ("databroker_storage_type", STATELESS),
    ("databroker_storage_connection_string", STATELESS),
    ("databroker_storage_connection_string_file", STATELESS),
    ("databroker_cluster_leader_id", STATELESS),
    ("databroker_cluster_node_id", STATELESS),
    ("databroker_cluster_nodes", STATELESS),
    ("databroker_raft_bind_address", STATELESS),
    (
        "authenticate_internal_service_url",
        "sluice serves authenticate itself, so there is no internal URL",
    ),
    (
        "authorize_service_urls",
        "sluice is one authorize service; use `authorize_service_url`",
    ),
    (
        "authorize_internal_service_url",
        "sluice is one authorize service; use `authorize_service_url`",
    ),
    ("use_proxy_protocol", ""),
    ("skip_xff_append", ""),
    ("xff_num_trusted_hops", ""),
    ("tracing_provider", NO_TRACES),
    ("tracing_sample_rate", NO_TRACES),
    ("otel_traces_exporter", NO_TRACES),
    ("otel_traces_sampler_arg", NO_TRACES),
    ("otel_resource_attributes", NO_TRACES),
    ("otel_log_level", NO_TRACES),
    ("otel_attribute_value_length_limit", NO_TRACES),
    ("otel_exporter_otlp_endpoint", NO_TRACES),
    ("otel_exporter_otlp_traces_endpoint", NO_TRACES),
    ("otel_exporter_otlp_protocol", NO_TRACES),
    ("otel_exporter_otlp_traces_protocol", NO_TRACES),
    ("otel_exporter_otlp_headers", NO_TRACES),
    ("otel_exporter_otlp_traces_headers", NO_TRACES),
    ("otel_exporter_otlp_timeout", NO_TRACES),
    ("otel_exporter_otlp_traces_timeout", NO_TRACES),
    ("otel_bsp_schedule_delay", NO_TRACES),
    ("otel_bsp_max_export_batch_size", NO_TRACES),
    ("idp_request_params", ""),
    ("idp_access_token_allowed_audiences", ""),
    ("identity_providers", ""),
    ("idp_service_account", ""),
    ("jwt_groups_filter", ""),
    ("jwt_issuer_format", ""),
    ("allow_upgrades", ""),
    ("circuit_breaker_thresholds", ""),
    ("dns_lookup_family", ENVOY_DNS),
    ("dns_failure_refresh_rate", ENVOY_DNS),
    ("dns_query_timeout", ENVOY_DNS),
    ("dns_query_tries", ENVOY_DNS),
    ("dns_refresh_rate", ENVOY_DNS),
    ("dns_resolvers", ENVOY_DNS),
    ("dns_udp_max_queries", ENVOY_DNS),
    ("dns_use_tcp", ENVOY_DNS),
    ("headers", "Pomerium's old name; use `set_response_headers`"),
    ("grpc_insecure", ""),
    ("health_check_addr", ""),
    ("health_check_systemd_disabled", ""),
    ("metrics_basic_auth", ""),
    ("metrics_certificate", ""),
    ("metrics_certificate_key", ""),
    ("metrics_certificate_file", ""),
    ("metrics_certificate_key_file", ""),
    ("metrics_client_ca", ""),
    ("metrics_client_ca_file", ""),
    ("envoy_admin_access_log_path", ""),
    ("envoy_admin_profile_path", ""),
    ("envoy_bind_config_source_address", ""),
    ("envoy_bind_config_freebind", ""),
    ("envoy_dynamic_extensions", ""),
    ("proxy_log_level", ""),
    ("access_log_fields", ""),
    (
        "authorization_log_fields",
        "Pomerium's old name for `authorize_log_fields`",
    ),
    (
        "forward_auth_url",
        "forward-auth mode was removed from Pomerium and sluice has none",
    ),
    ("audit_key", ""),
    ("mcp_allowed_as_metadata_domains", NO_MCP),
    ("mcp_allowed_client_id_domains", NO_MCP),
    ("ssh_address", NO_SSH),
    ("ssh_host_key_files", NO_SSH),
    ("ssh_host_keys", NO_SSH),
    ("ssh_rls_additional_entries", NO_SSH),
    ("ssh_rls_enabled", NO_SSH),
    ("ssh_user_ca_key", NO_SSH),
    ("ssh_user_ca_key_file", NO_SSH),
    ("blob_storage", "sluice records no sessions"),
    (
        "session_recording_concurrency",
        "sluice records no sessions",
    ),
    ("auto_apply_changesets", "an Enterprise console setting"),
    ("installation_id", "an Enterprise console setting"),
    ("debug_address", ""),
    ("google_cloud_serverless_authentication_service_account", ""),
    ("override_certificate_name", ""),
    ("tls_derive", ""),
    (
        "policy_file",
        "Pomerium removed it too; write routes in `routes`",
    ),
    (
        "headers_with_underscores_action",
        "sluice always rejects headers with underscores, as Pomerium does by default",
    ),
    (
        "merge_slashes",
        "sluice always merges slashes, as Pomerium does by default",
    ),
    (
        "normalize_path",
        "sluice always normalizes paths, as Pomerium does by default",
    ),
    (
        "path_with_escaped_slashes_action",
        "sluice always rejects escaped slashes in paths",
    ),
];

/// Keys that are route settings, for a helpful message when written at the top level.
pub const ROUTE_ONLY: &[&str] = &[
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
    "tls_custom_ca",
    "tls_custom_ca_file",
    "tls_client_cert",
    "tls_client_key",
    "tls_downstream_client_ca",
    "tls_downstream_client_ca_file",
    "load_balancing_policy",
    "allowed_users",
    "allowed_domains",
    "allowed_idp_claims",
    "allow_public_unauthenticated_access",
    "allow_any_authenticated_user",
    "cors_allow_preflight",
];

/// Keys that are global settings, for a helpful message when written inside a route.
pub const GLOBAL_ONLY: &[&str] = &[
    "address",
    "insecure_server",
    "http_redirect_addr",
    "certificates",
    "certificate",
    "certificate_key",
    "certificate_file",
    "certificate_key_file",
    "certificate_authority",
    "certificate_authority_file",
    "downstream_mtls",
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
    "cookie_http_only",
    "cookie_same_site",
    "cookie_domain",
    "signout_redirect_url",
    "programmatic_redirect_domain_whitelist",
    "runtime_flags",
    "signing_key",
    "jwt_claims_headers",
    "log_level",
    "routes",
];

/// Pomerium route settings sluice does not implement, with why.
pub const UNSUPPORTED_ROUTE: &[(&str, &str)] = &[
    ("tls_downstream_server_name", ""),
    ("tls_upstream_allow_renegotiation", ""),
    ("allow_renegotiation", ""),
    ("kubernetes_service_account_token", ""),
    ("kubernetes_service_account_token_file", ""),
    ("enable_google_cloud_serverless_authentication", ""),
    ("rewrite_response_headers", ""),
    ("jwt_groups_filter", ""),
    ("jwt_groups_filter_infer_from_ppl", ""),
    ("jwt_issuer_format", ""),
    (
        "sub_policies",
        "Pomerium's old per-route policy list; write the policy in `policy`",
    ),
    ("show_error_details", ""),
    ("health_checks", ""),
    ("outlier_detection", ""),
    ("healthy_panic_threshold", ""),
    ("circuit_breaker_thresholds", ""),
    ("allow_upgrades", ""),
    ("idp_client_id", "sluice has one identity provider"),
    ("idp_client_secret", "sluice has one identity provider"),
    ("idp_access_token_allowed_audiences", ""),
    ("identity_providers", ""),
    ("mcp", NO_MCP),
    ("upstream_tunnel", NO_SSH),
    ("ssh_policy", NO_SSH),
    ("upstream_oauth2", ""),
    ("session_recording", "sluice records no sessions"),
    ("max_request_bytes", ""),
    ("regex_priority_order", ""),
    (
        "allowed_groups",
        "Pomerium removed it; use a `groups` criterion in `policy`",
    ),
    ("set_authorization_header", ""),
    ("stat_name", ""),
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
        /// Base64 PEM chain, with `certificate_key` (Pomerium's inline form).
        certificate: String,
        certificate_key: Secret,
        certificate_authority: String,
        certificate_authority_file: String,
        downstream_mtls: RawDownstreamMtls,
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
        cookie_http_only: bool,
        cookie_same_site: String,
        cookie_domain: String,
        signout_redirect_url: String,
        programmatic_redirect_domain_whitelist: StringList,
        runtime_flags: Pairs<Spanned<bool>>,
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
        tls_custom_ca: String,
        tls_custom_ca_file: String,
        tls_client_cert: String,
        tls_client_cert_file: String,
        tls_client_key: Secret,
        tls_client_key_file: String,
        tls_downstream_client_ca: String,
        tls_downstream_client_ca_file: String,
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
    /// `downstream_mtls`: client certificates for the main listener.
    pub struct RawDownstreamMtls hints(crate::document::decode::NO_HINTS) {
        ca: String,
        ca_file: String,
        crl: String,
        crl_file: String,
        enforcement: String,
        /// Each entry one `type: pattern` pair, as Pomerium writes them.
        match_subject_alt_names: Vec<Spanned<Pairs<Spanned<String>>>>,
        max_verify_depth: u32,
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
