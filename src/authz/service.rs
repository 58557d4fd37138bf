//! The gRPC `envoy.service.auth.v3.Authorization` service Envoy's ext_authz filter calls,
//! with its decision metrics and its one log line per decision.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use envoy_types::ext_authz::v3::pb::{CheckResponse, HttpResponse};
use tracing::{Level, debug, warn};

use super::decide::{Decision, decide};
use super::identity::{IdentityError, IdentitySource, Session};
use super::index::{Index, IndexSource};
use super::request::RequestView;
use super::wire::CheckRequest;
use super::{certificate, headers, respond};
use crate::config::log_fields::{AuthorizeLogField as F, SECRET_HEADERS};
use crate::config::model::Route;
use crate::policy::eval::ClientCertificate;
use crate::telemetry::metrics::{DecisionLabels, metrics};
use crate::telemetry::{self, DECISION_TARGET, FieldValue};

/// Decision counters, for status and metrics.
#[derive(Debug, Default)]
pub struct AuthzCounters {
    pub checks: AtomicU64,
    pub allowed: AtomicU64,
    pub denied: AtomicU64,
    pub sign_in: AtomicU64,
    pub unknown_route: AtomicU64,
    /// Credentials presented but refused (bad signature, expired, wrong audience, ...).
    pub refused_credentials: AtomicU64,
    /// Envoy asked with a route table older than sluice's current one.
    pub stale_checksum: AtomicU64,
}

pub struct AuthzService {
    pub source: Arc<dyn IndexSource>,
    pub identities: Arc<dyn IdentitySource>,
    pub counters: Arc<AuthzCounters>,
}

/// A point-in-time copy of the counters, for status and metrics.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct AuthzCountersView {
    pub checks: u64,
    pub allowed: u64,
    pub denied: u64,
    pub sign_in: u64,
    pub unknown_route: u64,
    pub refused_credentials: u64,
    pub stale_checksum: u64,
}

impl AuthzCounters {
    pub fn view(&self) -> AuthzCountersView {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AuthzCountersView {
            checks: get(&self.checks),
            allowed: get(&self.allowed),
            denied: get(&self.denied),
            sign_in: get(&self.sign_in),
            unknown_route: get(&self.unknown_route),
            refused_credentials: get(&self.refused_credentials),
            stale_checksum: get(&self.stale_checksum),
        }
    }
}

/// What the decision log and metrics need to know about one answered Check.
struct Answered<'a> {
    /// Outcome and reasons, as the metrics label them.
    labels: DecisionLabels,
    /// The route and its checksum, as found in the index.
    route: Option<(&'a Route, &'a str)>,
    session: Option<Arc<Session>>,
}

impl AuthzService {
    pub async fn check_request(&self, request: &CheckRequest) -> CheckResponse {
        let started = Instant::now();
        let index = self.source.index();
        let view = RequestView::new(request);
        let (response, answered) = self.answer(&view, &index).await;
        let took = started.elapsed();
        let m = metrics();
        m.authz_check_duration.observe(took.as_secs_f64());
        m.authz_decisions.get_or_create(&answered.labels).inc();
        // Building the line costs allocations; skip it all when nobody reads it.
        if tracing::enabled!(target: DECISION_TARGET, Level::INFO) {
            let check_id = request
                .attributes
                .as_ref()
                .and_then(|a| a.request.as_ref())
                .and_then(|r| r.http.as_ref())
                .map(|h| super::wire::text(&h.id))
                .unwrap_or("");
            let latency_us = took.as_micros() as u64;
            log_decision(&view, check_id, &index, &answered, &response, latency_us);
        }
        response
    }

    /// Who made the request: a remembered credential answers at once, anything else is
    /// checked (and may wait on the identity provider).
    async fn identify(
        &self,
        view: &RequestView<'_>,
        route: &Route,
        index: &Index,
    ) -> Result<Option<Arc<Session>>, IdentityError> {
        match self.identities.remembered(view, route, index) {
            Some(known) => known,
            None => self.identities.identify(view, route, index).await,
        }
    }

    async fn answer<'a>(
        &self,
        view: &RequestView<'_>,
        index: &'a Index,
    ) -> (CheckResponse, Answered<'a>) {
        let c = &self.counters;
        c.checks.fetch_add(1, Ordering::Relaxed);
        let found = view.route_id.and_then(|id| index.route(id));
        if let (Some((_, checksum)), Some(sent)) = (found, view.checksum)
            && sent != checksum
        {
            let seen = c.stale_checksum.fetch_add(1, Ordering::Relaxed) + 1;
            // Logged at the 1st, 2nd, 4th, 8th, ... occurrence: visible, never a flood.
            if seen.is_power_of_two() {
                warn!(
                    route_id = view.route_id.unwrap_or(""),
                    occurrences = seen,
                    "route checksum from Envoy differs: it is still on an older route table"
                );
            }
        }
        let route = found.map(|(r, _)| r);
        let session = match route {
            Some(route) => match self.identify(view, route, index).await {
                Ok(session) => session,
                Err(e) => {
                    // Refused credentials count as nobody: the policy then asks for sign-in or
                    // denies, exactly as for an anonymous request.
                    c.refused_credentials.fetch_add(1, Ordering::Relaxed);
                    debug!(route_id = %route.id, error = %e, "credentials refused");
                    None
                }
            },
            None => None,
        };
        let cert = certificate::read_for(route, view.certificate);
        let decided = decide(route, view, session.as_deref(), cert.clone());
        let (outcome, reasons) = match &decided.decision {
            Decision::Allow => (
                "allow",
                joined(
                    decided
                        .evaluation
                        .as_ref()
                        .map(|e| e.allow_reasons.as_slice())
                        .unwrap_or_default(),
                ),
            ),
            Decision::SignIn => (
                "sign_in",
                Cow::Borrowed(crate::policy::eval::reason::USER_UNAUTHENTICATED),
            ),
            Decision::Deny { reasons, .. } => ("deny", joined(reasons)),
            Decision::UnknownRoute => ("unknown_route", Cow::Borrowed("route-not-found")),
        };
        let answered = |session| Answered {
            labels: DecisionLabels {
                outcome,
                reason: reasons,
            },
            route: found,
            session,
        };
        match (&decided.decision, route) {
            (Decision::Allow, Some(route)) => {
                c.allowed.fetch_add(1, Ordering::Relaxed);
                let info = match &cert {
                    ClientCertificate::Valid(info) => Some(info),
                    _ => None,
                };
                let (set, remove) = headers::for_allowed(
                    route,
                    &index.model.global,
                    view,
                    session.as_deref(),
                    &index.assertions,
                    info,
                );
                let mut response = respond::allow(set, remove);
                if let Some(session) = session.as_deref().filter(|s| !s.set_cookies.is_empty()) {
                    respond::set_cookies(&mut response, &session.set_cookies);
                }
                return (response, answered(session));
            }
            (Decision::SignIn, _) => c.sign_in.fetch_add(1, Ordering::Relaxed),
            (Decision::UnknownRoute, _) => {
                let seen = c.unknown_route.fetch_add(1, Ordering::Relaxed) + 1;
                if seen.is_power_of_two() {
                    warn!(
                        route_id = view.route_id.unwrap_or("(none)"),
                        host = view.host,
                        occurrences = seen,
                        "ext_authz call for a route sluice does not know; denied"
                    );
                }
                seen
            }
            _ => c.denied.fetch_add(1, Ordering::Relaxed),
        };
        (respond::refuse(&decided, view, index), answered(session))
    }
}

/// Pomerium's reasons as one label value: sorted already (they come from sets); borrowed in
/// the common single-reason case, so the hot path allocates nothing for it.
fn joined(reasons: &[&'static str]) -> Cow<'static, str> {
    match reasons {
        [] => Cow::Borrowed(""),
        [one] => Cow::Borrowed(one),
        many => Cow::Owned(many.join(",")),
    }
}

/// The HTTP status Envoy returns for this answer (200 when allowed).
fn http_status(response: &CheckResponse) -> u16 {
    match &response.http_response {
        Some(HttpResponse::DeniedResponse(d)) => d
            .status
            .as_ref()
            .and_then(|s| u16::try_from(s.code).ok())
            .unwrap_or(403),
        _ => 200,
    }
}

/// One line per decision at info, Pomerium's "authorize check": decision, reason, status and
/// latency always; the rest as `authorize_log_fields` says. Never a token, a cookie or an
/// Authorization header: no field reads them, and `headers` leaves them out.
fn log_decision(
    view: &RequestView<'_>,
    check_id: &str,
    index: &Index,
    answered: &Answered<'_>,
    response: &CheckResponse,
    latency_us: u64,
) {
    let fields = &index.model.global.authorize_log_fields;
    let on = |f: F| fields.contains(f);
    // Borrowed, not copied: the line is built from the request's own strings.
    fn keep(on: bool, value: &str) -> Option<&str> {
        (on && !value.is_empty()).then_some(value)
    }
    let pick = |f: F, value| keep(on(f), value);
    let identity = answered.session.as_deref().map(|s| &s.identity);
    let route = answered.route.map(|(r, _)| r);
    // Written into the line as it is formatted: no String per Check.
    let from = route.filter(|_| on(F::RouteId)).map(|r| &r.from);
    let route_checksum = answered
        .route
        .filter(|_| on(F::RouteChecksum))
        .map(|(_, checksum)| checksum);
    let query = view
        .raw_path
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(""))
        .and_then(|q| pick(F::Query, q));
    let headers = logged_headers(view, fields);
    let ip = view.source_ip.filter(|_| on(F::Ip));
    fn text(value: Option<&str>) -> Option<FieldValue<'_>> {
        value.map(FieldValue::Str)
    }
    telemetry::decision_line(&[
        ("decision", Some(FieldValue::Str(answered.labels.outcome))),
        ("reason", Some(FieldValue::Str(&answered.labels.reason))),
        (
            "status",
            Some(FieldValue::U64(http_status(response).into())),
        ),
        ("latency_us", Some(FieldValue::U64(latency_us))),
        ("request-id", text(pick(F::RequestId, view.request_id))),
        ("check-request-id", text(pick(F::CheckRequestId, check_id))),
        ("method", text(pick(F::Method, view.method))),
        ("host", text(pick(F::Host, view.host))),
        ("path", text(pick(F::Path, &view.path))),
        ("query", text(query)),
        ("ip", ip.as_ref().map(|ip| FieldValue::Display(ip))),
        (
            "user",
            text(identity.and_then(|i| pick(F::User, &i.user_id))),
        ),
        (
            "email",
            text(
                identity
                    .and_then(|i| i.email.as_deref())
                    .and_then(|e| pick(F::Email, e)),
            ),
        ),
        (
            "route-id",
            text(route.and_then(|r| pick(F::RouteId, &r.id))),
        ),
        ("from", from.map(|f| FieldValue::Display(f))),
        ("route-checksum", route_checksum.map(FieldValue::Str)),
        (
            "envoy-route-id",
            text(view.route_id.and_then(|id| pick(F::EnvoyRouteId, id))),
        ),
        (
            "envoy-route-checksum",
            text(view.checksum.and_then(|c| pick(F::EnvoyRouteChecksum, c))),
        ),
        ("headers", headers.as_deref().map(FieldValue::Str)),
    ]);
}

/// The request headers `authorize_log_fields` asks for (`headers`: all, `headers.<name>`:
/// one), as a JSON object, credentials left out.
fn logged_headers(
    view: &RequestView<'_>,
    fields: &crate::config::log_fields::AuthorizeLogFields,
) -> Option<String> {
    let all = fields.contains(F::Headers);
    if !all && fields.headers.is_empty() {
        return None;
    }
    let chosen: std::collections::BTreeMap<&str, &str> = view
        .headers
        .iter()
        .filter(|(k, _)| !SECRET_HEADERS.contains(k))
        .filter(|(k, _)| all || fields.headers.iter().any(|h| h == k))
        .collect();
    serde_json::to_string(&chosen).ok()
}
