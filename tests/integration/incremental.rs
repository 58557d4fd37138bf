//! Incremental reloads give what a full load gives: for random sequences of edits (routes
//! added, removed, changed, broken and fixed; global keys changed; comments and blank lines),
//! the reloading loader's model, warnings, errors and Envoy resources (translated host by host
//! from what the last reload built) equal a fresh load and translation of the same bytes.

use std::path::Path;

use proptest::prelude::*;
use sluice::app::reload::{snapshot_for, snapshot_reusing};
use sluice::app::translate::Translator;
use sluice::config::validate::Incremental;
use sluice::xds::{ResourceType, Snapshot};

/// One route's text: `kind` picks its shape, `n` keeps hosts and upstreams apart.
fn route(kind: u8, n: u32) -> String {
    let host = n % 7;
    match kind % 10 {
        0 => format!(
            "  - from: http://app{host}.example.com\n    prefix: /p{n}/\n    to: http://10.0.{host}.1:80\n    allowed_domains: [example.com]\n"
        ),
        1 => format!(
            "  - from: http://app{host}.example.com\n    path: /exact{n}\n    to: http://10.1.0.{host}:80\n    timeout: {n}s\n    idle_timeout: 10m\n"
        ),
        2 => format!(
            "  - from: http://api{host}.example.com\n    prefix: /v{n}\n    to:\n      - http://10.2.0.1:80,3\n      - http://10.2.0.2:80,1\n    policy:\n      allow:\n        or:\n          - email: {{ends_with: '@example.com'}}\n          - groups: {{has: g{n}}}\n"
        ),
        3 => format!(
            "  - from: http://ws{host}.example.com\n    prefix: /ws{n}\n    to: http://10.3.0.{host}:80\n    allow_websockets: true\n    allow_public_unauthenticated_access: true\n    set_request_headers:\n      X-N: \"{n}\"\n"
        ),
        4 => format!(
            "  # route {n}\n  - from: http://app{host}.example.com\n    prefix: /c{n}\n\n    to: http://10.4.0.1:80\n    allow_any_authenticated_user: true\n"
        ),
        // Broken: a bad duration (an error the loader must report at this route's line).
        5 => format!(
            "  - from: http://bad{host}.example.com\n    to: http://10.5.0.1:80\n    timeout: {n}parsecs\n"
        ),
        // A duplicate of a kind-0 route with the same n: the id-uniqueness check needs every route.
        6 => format!(
            "  - from: http://app{host}.example.com\n    prefix: /p{n}/\n    to: http://10.0.{host}.1:80\n    allowed_domains: [example.com]\n"
        ),
        // A wildcard host: every host shares one route table while it is there.
        8 => format!(
            "  - from: http://*.wild{host}.example.com\n    to: http://10.8.0.1:80\n    allow_public_unauthenticated_access: true\n"
        ),
        // A warning (a timeout longer than timeout_write is fine, but say so).
        _ => format!(
            "  - from: http://w{host}.example.com\n    to: http://10.7.0.1:80\n    websocket_timeout: 1h\n    allow_websockets: true\n"
        ),
    }
}

/// 32 bytes, base64: a test-only secret.
const SECRET: &str = "c2x1aWNlLXRlc3QtY29va2llLXNlY3JldC0zMmJ5dGU=";

fn file(global: u8, routes: &[(u8, u32)]) -> String {
    let mut out = String::from("insecure_server: true\naddress: 127.0.0.1:8080\n");
    if global % 3 == 1 {
        out.push_str("default_upstream_timeout: 45s\n");
    }
    if global % 3 == 2 {
        out.push_str("# a comment above the routes\n\n");
    }
    // Sign-in, with the authenticate host one of the route hosts or a host of its own.
    if global % 4 >= 2 {
        let host = if global % 4 == 2 { "app1" } else { "auth" };
        out.push_str(&format!(
            "idp_provider: oidc\nidp_provider_url: http://127.0.0.1:9/\nidp_client_id: c\nidp_client_secret: s\nauthenticate_service_url: http://{host}.example.com\ncookie_secret: {SECRET}\nshared_secret: {SECRET}\n"
        ));
    }
    out.push_str("routes:\n");
    for (kind, n) in routes {
        out.push_str(&route(*kind, *n));
    }
    if global % 2 == 1 {
        out.push_str("timeout_idle: 7m\n");
    }
    out
}

#[derive(Clone, Debug)]
enum Edit {
    Change(usize, u8, u32),
    Insert(usize, u8, u32),
    Remove(usize),
    Global(u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), 0u8..10, 0u32..40).prop_map(|(i, k, n)| Edit::Change(i, k, n)),
        2 => (any::<usize>(), 0u8..10, 0u32..40).prop_map(|(i, k, n)| Edit::Insert(i, k, n)),
        2 => any::<usize>().prop_map(Edit::Remove),
        1 => (0u8..12).prop_map(Edit::Global),
    ]
}

/// The same protobuf message. The bytes are compared decoded: a message with a map field
/// (a route's `typed_per_filter_config`) may put the map's entries in any order, and prost
/// encodes them in its `HashMap`'s order, which differs from one encoding to the next.
fn same_message(ty: ResourceType, a: &[u8], b: &[u8]) -> bool {
    use envoy_types::pb::envoy::config::cluster::v3::Cluster;
    use envoy_types::pb::envoy::config::listener::v3::Listener;
    use envoy_types::pb::envoy::config::route::v3::{RouteConfiguration, ScopedRouteConfiguration};
    use envoy_types::pb::envoy::extensions::transport_sockets::tls::v3::Secret;
    use prost::Message;
    fn same<M: Message + Default + PartialEq>(a: &[u8], b: &[u8]) -> bool {
        matches!((M::decode(a), M::decode(b)), (Ok(x), Ok(y)) if x == y)
    }
    a == b
        || match ty {
            ResourceType::Cluster => same::<Cluster>(a, b),
            ResourceType::Listener => same::<Listener>(a, b),
            ResourceType::RouteConfiguration => same::<RouteConfiguration>(a, b),
            ResourceType::ScopedRoute => same::<ScopedRouteConfiguration>(a, b),
            ResourceType::Secret => same::<Secret>(a, b),
        }
}

/// What a load produced, in a form two loads can be compared by.
fn outcome(result: &Result<sluice::config::Model, sluice::document::diag::Rejected>) -> String {
    match result {
        Ok(model) => format!(
            "ok {}\nwarnings {:?}",
            serde_json::to_string(model).expect("model serializes"),
            model.warnings
        ),
        Err(rejected) => format!("rejected {:?}", rejected.diagnostics),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn incremental_loads_equal_full_loads(
        start in prop::collection::vec((0u8..10, 0u32..40), 1..12),
        edits in prop::collection::vec(edit(), 1..12),
    ) {
        let path = Path::new("/tmp/sluice-incremental-prop/config.yaml");
        let mut loader = Incremental::new();
        let mut translator = Translator::new();
        let mut previous = Snapshot::default();
        let mut routes = start;
        let mut global = 0u8;
        for step in std::iter::once(None).chain(edits.into_iter().map(Some)) {
            match step {
                None => {}
                Some(Edit::Change(i, k, n)) => { let l = routes.len(); routes[i % l] = (k, n); }
                Some(Edit::Insert(i, k, n)) => { let at = i % (routes.len() + 1); routes.insert(at, (k, n)); }
                Some(Edit::Remove(i)) if routes.len() > 1 => { let l = routes.len(); routes.remove(i % l); }
                Some(Edit::Remove(_)) => {}
                Some(Edit::Global(g)) => global = g,
            }
            let text = file(global, &routes);
            let (incremental, _) = loader.load(path, text.as_bytes());
            let full = sluice::config::load_bytes(path, text.as_bytes());
            prop_assert_eq!(outcome(&incremental), outcome(&full), "after {:?}:\n{}", step, text);
            if let (Ok(a), Ok(b)) = (&incremental, &full) {
                // The Envoy resources too, built with what the last reload kept.
                let kept = translator.snapshot(a, 2, &previous);
                prop_assert!(snapshot_reusing(a, 2, &previous).same_content(&kept));
                let fresh = snapshot_for(b, 2);
                prop_assert!(kept.same_content(&fresh), "resources differ after {:?}", step);
                for ty in ResourceType::ALL {
                    let names = |s: &Snapshot| s.resources(ty).values().map(|r| (r.name.to_string(), r.version.to_string())).collect::<Vec<_>>();
                    prop_assert_eq!(names(&kept), names(&fresh), "{:?} after {:?}", ty, step);
                    for (a, b) in kept.resources(ty).values().zip(fresh.resources(ty).values()) {
                        prop_assert!(same_message(ty, &a.bytes, &b.bytes), "{} differs after {:?}", a.name, step);
                    }
                }
                previous = kept;
            }
        }
    }
}

#[test]
fn a_one_route_edit_revalidates_one_route() {
    let path = Path::new("/tmp/sluice-incremental/config.yaml");
    let routes: Vec<(u8, u32)> = (0..50).map(|n| ((n % 5) as u8, n)).collect();
    let mut loader = Incremental::new();
    let (first, reuse) = loader.load(path, file(0, &routes).as_bytes());
    assert!(first.is_ok());
    assert_eq!((reuse.reused, reuse.validated, reuse.whole), (0, 50, false));
    // Route 20 (4 lines) becomes another 4-line route: only it is validated again.
    let mut edited = routes.clone();
    edited[20] = (0, 99);
    let (second, reuse) = loader.load(path, file(0, &edited).as_bytes());
    assert!(second.is_ok());
    assert_eq!((reuse.reused, reuse.validated), (49, 1));
    // A route inserted moves the ones after it: those before it are reused.
    edited.insert(45, (3, 77));
    let (_, reuse) = loader.load(path, file(0, &edited).as_bytes());
    assert_eq!((reuse.reused, reuse.validated), (45, 6));
    // A global change re-validates every route against it.
    let (_, reuse) = loader.load(path, file(1, &edited).as_bytes());
    assert_eq!((reuse.reused, reuse.validated), (0, 51));
    // A layout the splitter leaves alone is loaded whole.
    let (anchored, reuse) = loader.load(
        path,
        b"insecure_server: true\naddress: 127.0.0.1:8080\nroutes:\n  - &r {from: http://a.example.com, to: http://10.0.0.1}\n",
    );
    assert!(anchored.is_ok());
    assert!(reuse.whole);
}

#[test]
fn a_one_route_edit_rebuilds_one_host() {
    let path = Path::new("/tmp/sluice-incremental-hosts/config.yaml");
    // Kinds 0, 1 and 4 serve app0..app6.example.com: seven hosts.
    let routes: Vec<(u8, u32)> = (0..42).map(|n| ([0, 1, 4][n as usize % 3], n)).collect();
    let mut loader = Incremental::new();
    let mut translator = Translator::new();
    let mut load = |routes: &[(u8, u32)], global: u8| {
        let (model, _) = loader.load(path, file(global, routes).as_bytes());
        model.expect("valid")
    };
    let first = load(&routes, 0);
    let (previous, reuse) = translator.snapshot_and_reuse(&first, 1, &Snapshot::default());
    assert!(reuse.whole, "the first translation is whole");
    // Route 10 (kind 1, host app3) gets another timeout.
    let mut edited = routes.clone();
    edited[10] = (1, 10 + 7 * 40);
    let model = load(&edited, 0);
    let (snapshot, reuse) = translator.snapshot_and_reuse(&model, 2, &previous);
    assert_eq!(
        (reuse.whole, reuse.hosts_built, reuse.hosts_reused),
        (false, 1, 6)
    );
    assert_eq!(
        snapshot.changed_since(&previous, ResourceType::RouteConfiguration),
        ["routes/ingress/app3.example.com"]
    );
    // A global change translates whole; so does a wildcard host (one shared table).
    let (_, reuse) = translator.snapshot_and_reuse(&load(&edited, 1), 3, &snapshot);
    assert!(reuse.whole);
    edited.push((8, 1));
    let (_, reuse) = translator.snapshot_and_reuse(&load(&edited, 1), 4, &snapshot);
    assert!(reuse.whole);
}
