//! The ADS protocol, scripted: a test client speaks to sluice's ADS server (no Envoy) to pin
//! down nonces, versions, ACK/NACK, stale nonces, subscriptions, push order and removals.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::envoy::service::discovery::v3::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
};
use envoy_types::pb::google::rpc::Status as RpcStatus;
use sluice::xds::{AdsServer, Registry, Resource, ResourceType, Snapshot, SnapshotSource};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

const CDS: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
const LDS: &str = "type.googleapis.com/envoy.config.listener.v3.Listener";
const RDS: &str = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
const SRDS: &str = "type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration";

/// A snapshot source the test controls.
struct Source {
    current: Mutex<Arc<Snapshot>>,
    changed: watch::Sender<u64>,
}

impl SnapshotSource for Source {
    fn current(&self) -> Arc<Snapshot> {
        Arc::clone(&self.current.lock().unwrap())
    }
    fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

impl Source {
    fn publish(&self, snapshot: Snapshot) {
        let generation = snapshot.generation;
        *self.current.lock().unwrap() = Arc::new(snapshot);
        self.changed.send_replace(generation);
    }
}

/// `(type, name, version)` → a snapshot; the bytes are the version, so content follows it.
fn snapshot(generation: u64, items: &[(ResourceType, &str, &str)]) -> Snapshot {
    Snapshot::new(
        generation,
        items.iter().map(|(ty, name, version)| {
            (
                *ty,
                Resource {
                    name: (*name).into(),
                    version: (*version).into(),
                    bytes: bytes::Bytes::from(format!("{name}@{version}")),
                },
            )
        }),
    )
}

struct Server {
    source: Arc<Source>,
    registry: Arc<Registry>,
    port: u16,
    _runtime_guard: tokio::task::JoinHandle<()>,
}

async fn server(initial: Snapshot) -> Server {
    let source = Arc::new(Source {
        current: Mutex::new(Arc::new(initial)),
        changed: watch::Sender::new(0),
    });
    let registry = Arc::new(Registry::default());
    let ads = AdsServer::new(
        Arc::clone(&source) as Arc<dyn SnapshotSource>,
        Arc::clone(&registry),
    );
    let app = tonic::service::Routes::new(ads).into_axum_router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let guard = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Server {
        source,
        registry,
        port,
        _runtime_guard: guard,
    }
}

async fn client(port: u16) -> AggregatedDiscoveryServiceClient<tonic::transport::Channel> {
    AggregatedDiscoveryServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .unwrap()
}

fn node(id: &str) -> Option<Node> {
    Some(Node {
        id: id.into(),
        cluster: "test".into(),
        ..Default::default()
    })
}

struct Sotw {
    tx: mpsc::Sender<DiscoveryRequest>,
    rx: Streaming<DiscoveryResponse>,
}

impl Sotw {
    async fn open(port: u16) -> Sotw {
        let (tx, rx) = mpsc::channel(16);
        let rx = client(port)
            .await
            .stream_aggregated_resources(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        Sotw { tx, rx }
    }

    async fn send(
        &self,
        type_url: &str,
        names: &[&str],
        version: &str,
        nonce: &str,
        error: Option<&str>,
    ) {
        let request = DiscoveryRequest {
            node: node("scripted"),
            type_url: type_url.into(),
            resource_names: names.iter().map(|n| n.to_string()).collect(),
            version_info: version.into(),
            response_nonce: nonce.into(),
            error_detail: error.map(|e| RpcStatus {
                code: 3,
                message: e.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.tx.send(request).await.unwrap();
    }

    async fn next(&mut self) -> DiscoveryResponse {
        tokio::time::timeout(Duration::from_secs(5), self.rx.message())
            .await
            .expect("a response")
            .unwrap()
            .unwrap()
    }

    /// Asserts that nothing arrives for a while.
    async fn quiet(&mut self) {
        if let Ok(Ok(Some(r))) =
            tokio::time::timeout(Duration::from_millis(300), self.rx.message()).await
        {
            panic!("unexpected response: {} {:?}", r.type_url, names(&r));
        }
    }
}

fn names(r: &DiscoveryResponse) -> Vec<String> {
    r.resources
        .iter()
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
        .collect()
}

fn base() -> Snapshot {
    snapshot(
        1,
        &[
            (ResourceType::Cluster, "a", "1"),
            (ResourceType::Cluster, "b", "1"),
            (ResourceType::Listener, "l", "1"),
            (ResourceType::RouteConfiguration, "r1", "1"),
            (ResourceType::RouteConfiguration, "r2", "1"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sotw_versions_nonces_acks_and_nacks() {
    let srv = server(base()).await;
    let mut s = Sotw::open(srv.port).await;
    s.send(CDS, &[], "", "", None).await;
    let first = s.next().await;
    assert_eq!(first.type_url, CDS);
    assert_eq!(
        names(&first),
        ["a@1", "b@1"],
        "wildcard CDS carries every cluster"
    );
    assert!(!first.version_info.is_empty() && !first.nonce.is_empty());

    // ACK: nothing more to send.
    s.send(CDS, &[], &first.version_info, &first.nonce, None)
        .await;
    s.quiet().await;
    let status = srv.registry.connections();
    assert_eq!(
        status[0].types["CDS"].acked_version.as_deref(),
        Some(first.version_info.as_str())
    );

    // A change sends the whole set again, with a new version and nonce.
    srv.source.publish(snapshot(
        2,
        &[
            (ResourceType::Cluster, "a", "1"),
            (ResourceType::Cluster, "b", "2"),
        ],
    ));
    let second = s.next().await;
    assert_eq!(names(&second), ["a@1", "b@2"]);
    assert_ne!(second.version_info, first.version_info);
    assert_ne!(second.nonce, first.nonce);

    // NACK: recorded with Envoy's text, and not answered by resending the same thing.
    s.send(
        CDS,
        &[],
        &first.version_info,
        &second.nonce,
        Some("cluster b: invalid thing"),
    )
    .await;
    s.quiet().await;
    let status = srv.registry.connections();
    let cds = &status[0].types["CDS"];
    assert_eq!(
        cds.last_nack.as_ref().map(|n| n.error.as_str()),
        Some("cluster b: invalid thing")
    );
    assert_eq!(
        cds.acked_version.as_deref(),
        Some(first.version_info.as_str()),
        "still on the last good version"
    );
    assert_eq!(srv.registry.counters.view().nacks, 1);

    // A generation with the same content sends nothing.
    srv.source.publish(snapshot(
        3,
        &[
            (ResourceType::Cluster, "a", "1"),
            (ResourceType::Cluster, "b", "2"),
        ],
    ));
    s.quiet().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sotw_named_subscriptions_and_stale_nonces() {
    let srv = server(base()).await;
    let mut s = Sotw::open(srv.port).await;
    s.send(RDS, &["r1"], "", "", None).await;
    let first = s.next().await;
    assert_eq!(names(&first), ["r1@1"], "only the named route table");
    s.send(RDS, &["r1"], &first.version_info, &first.nonce, None)
        .await;
    s.quiet().await;

    // A request carrying a nonce that is not the latest is stale: ignored.
    s.send(
        RDS,
        &["r1", "r2"],
        &first.version_info,
        "not-the-latest",
        None,
    )
    .await;
    s.quiet().await;

    // The same subscription change with the current nonce is honoured.
    s.send(RDS, &["r1", "r2"], &first.version_info, &first.nonce, None)
        .await;
    let both = s.next().await;
    // Route tables go out when they change: the client keeps r1, so only r2 comes; the
    // version names both.
    assert_eq!(names(&both), ["r2@1"]);
    assert_ne!(both.version_info, first.version_info);
    s.send(RDS, &["r1", "r2"], &both.version_info, &both.nonce, None)
        .await;
    s.quiet().await;

    // An edit to r1 sends r1 alone; scopes are a wildcard type, sent whole.
    srv.source.publish(snapshot(
        2,
        &[
            (ResourceType::RouteConfiguration, "r1", "2"),
            (ResourceType::RouteConfiguration, "r2", "1"),
            (ResourceType::ScopedRoute, "s1", "1"),
            (ResourceType::ScopedRoute, "s2", "1"),
        ],
    ));
    let edit = s.next().await;
    assert_eq!(names(&edit), ["r1@2"]);
    s.send(SRDS, &[], "", "", None).await;
    let scopes = s.next().await;
    assert_eq!(names(&scopes), ["s1@1", "s2@1"]);
    srv.source.publish(snapshot(
        3,
        &[
            (ResourceType::RouteConfiguration, "r1", "2"),
            (ResourceType::RouteConfiguration, "r2", "1"),
            (ResourceType::ScopedRoute, "s1", "2"),
            (ResourceType::ScopedRoute, "s2", "1"),
        ],
    ));
    let scopes = s.next().await;
    assert_eq!(names(&scopes), ["s1@2", "s2@1"], "every scope, every time");

    // A name nothing provides gets no response (the client waits for it).
    s.send(RDS, &["missing"], &edit.version_info, &edit.nonce, None)
        .await;
    s.quiet().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sotw_pushes_make_before_break() {
    let srv = server(base()).await;
    let mut s = Sotw::open(srv.port).await;
    let mut last = None;
    for (ty, subscription) in [(CDS, vec![]), (LDS, vec![]), (RDS, vec!["r1"])] {
        s.send(ty, &subscription, "", "", None).await;
        let r = s.next().await;
        if ty == RDS {
            // Held back: this ACK races the publish below, as Envoy's may.
            last = Some(r);
            continue;
        }
        s.send(ty, &subscription, &r.version_info, &r.nonce, None)
            .await;
    }
    let routes = last.expect("the routes");
    // Cluster a goes, c arrives, and the listener and routes change together.
    srv.source.publish(snapshot(
        2,
        &[
            (ResourceType::Cluster, "b", "1"),
            (ResourceType::Cluster, "c", "1"),
            (ResourceType::Listener, "l", "2"),
            (ResourceType::RouteConfiguration, "r1", "2"),
        ],
    ));
    // An ACK of the old routes arriving now must not send the new ones ahead of the clusters.
    s.send(RDS, &["r1"], &routes.version_info, &routes.nonce, None)
        .await;
    let order: Vec<(String, Vec<String>)> = {
        let mut out = Vec::new();
        for _ in 0..4 {
            let r = s.next().await;
            out.push((r.type_url.clone(), names(&r)));
        }
        out
    };
    assert_eq!(
        order[0],
        (
            CDS.to_string(),
            vec!["a@1".into(), "b@1".into(), "c@1".into()]
        ),
        "new clusters first, old ones kept"
    );
    assert_eq!(order[1], (LDS.to_string(), vec!["l@2".into()]));
    assert_eq!(order[2], (RDS.to_string(), vec!["r1@2".into()]));
    assert_eq!(
        order[3],
        (CDS.to_string(), vec!["b@1".into(), "c@1".into()]),
        "unused clusters removed last"
    );
}

struct Delta {
    tx: mpsc::Sender<DeltaDiscoveryRequest>,
    rx: Streaming<DeltaDiscoveryResponse>,
}

impl Delta {
    async fn open(port: u16) -> Delta {
        let (tx, rx) = mpsc::channel(16);
        let rx = client(port)
            .await
            .delta_aggregated_resources(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        Delta { tx, rx }
    }

    async fn send(&self, request: DeltaDiscoveryRequest) {
        self.tx
            .send(DeltaDiscoveryRequest {
                node: node("scripted-delta"),
                ..request
            })
            .await
            .unwrap();
    }

    async fn next(&mut self) -> DeltaDiscoveryResponse {
        tokio::time::timeout(Duration::from_secs(5), self.rx.message())
            .await
            .expect("a response")
            .unwrap()
            .unwrap()
    }

    async fn quiet(&mut self) {
        if let Ok(Ok(Some(r))) =
            tokio::time::timeout(Duration::from_millis(300), self.rx.message()).await
        {
            panic!(
                "unexpected response: {} {:?} removed {:?}",
                r.type_url,
                delta_names(&r),
                r.removed_resources
            );
        }
    }
}

fn delta_names(r: &DeltaDiscoveryResponse) -> Vec<String> {
    r.resources
        .iter()
        .map(|res| format!("{}@{}", res.name, res.version))
        .collect()
}

fn ack(type_url: &str, nonce: &str) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        type_url: type_url.into(),
        response_nonce: nonce.into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_sends_only_changes_and_names_removals() {
    let srv = server(base()).await;
    let mut d = Delta::open(srv.port).await;
    d.send(DeltaDiscoveryRequest {
        type_url: CDS.into(),
        ..Default::default()
    })
    .await;
    let first = d.next().await;
    assert_eq!(
        delta_names(&first),
        ["a@1", "b@1"],
        "legacy wildcard: every cluster"
    );
    d.send(ack(CDS, &first.nonce)).await;
    d.quiet().await;

    srv.source.publish(snapshot(
        2,
        &[
            (ResourceType::Cluster, "b", "2"),
            (ResourceType::Cluster, "c", "1"),
        ],
    ));
    let added = d.next().await;
    assert_eq!(delta_names(&added), ["b@2", "c@1"], "only what changed");
    assert!(
        added.removed_resources.is_empty(),
        "removals wait until routes moved away"
    );
    let removed = d.next().await;
    assert!(removed.resources.is_empty());
    assert_eq!(removed.removed_resources, ["a"]);

    // Named route tables: one that exists is sent, one that does not is reported removed.
    d.send(DeltaDiscoveryRequest {
        type_url: RDS.into(),
        resource_names_subscribe: vec!["r1".into(), "nope".into()],
        ..Default::default()
    })
    .await;
    let routes = d.next().await;
    assert!(routes.resources.is_empty(), "r1 is not in generation 2");
    let mut removed = routes.removed_resources.clone();
    removed.sort();
    assert_eq!(removed, ["nope", "r1"]);

    // Unsubscribing needs no answer.
    d.send(DeltaDiscoveryRequest {
        type_url: RDS.into(),
        resource_names_unsubscribe: vec!["nope".into()],
        ..Default::default()
    })
    .await;
    d.quiet().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_reconnect_with_known_versions_resends_nothing_unchanged() {
    let srv = server(base()).await;
    let mut d = Delta::open(srv.port).await;
    let initial = [
        ("a".to_string(), "1".to_string()),
        ("b".to_string(), "0".to_string()),
    ]
    .into_iter()
    .collect();
    d.send(DeltaDiscoveryRequest {
        type_url: CDS.into(),
        resource_names_subscribe: vec!["*".into()],
        initial_resource_versions: initial,
        ..Default::default()
    })
    .await;
    let first = d.next().await;
    assert_eq!(
        delta_names(&first),
        ["b@1"],
        "a is current; only b is stale"
    );
}

/// Envoy unsubscribes from `*` when a type's last watcher goes and subscribes again when a new
/// one comes; by then it holds nothing of the type, so everything is sent again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delta_wildcard_subscribed_again_resends_everything() {
    let srv = server(base()).await;
    let mut d = Delta::open(srv.port).await;
    let wildcard = |subscribe: bool| DeltaDiscoveryRequest {
        type_url: CDS.into(),
        resource_names_subscribe: if subscribe {
            vec!["*".into()]
        } else {
            Vec::new()
        },
        resource_names_unsubscribe: if subscribe {
            Vec::new()
        } else {
            vec!["*".into()]
        },
        ..Default::default()
    };
    d.send(wildcard(true)).await;
    let first = d.next().await;
    assert_eq!(delta_names(&first), ["a@1", "b@1"]);
    d.send(ack(CDS, &first.nonce)).await;
    d.quiet().await;

    d.send(wildcard(false)).await;
    d.quiet().await;
    d.send(wildcard(true)).await;
    let again = d.next().await;
    assert_eq!(
        delta_names(&again),
        ["a@1", "b@1"],
        "subscribed again after unsubscribing: everything"
    );
    assert!(again.removed_resources.is_empty());
    d.send(ack(CDS, &again.nonce)).await;
    d.quiet().await;

    // Asked for again while still subscribed (a new watcher): everything too.
    d.send(wildcard(true)).await;
    let repeated = d.next().await;
    assert_eq!(delta_names(&repeated), ["a@1", "b@1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_client_does_not_delay_others() {
    let srv = server(base()).await;
    // More stuck clients than permits for large responses: each asks once, then never reads.
    let mut stuck = Vec::new();
    for _ in 0..4 {
        let s = Sotw::open(srv.port).await;
        s.send(CDS, &[], "", "", None).await;
        stuck.push(s);
    }
    let mut healthy = Sotw::open(srv.port).await;
    healthy.send(CDS, &[], "", "", None).await;
    let r = healthy.next().await;
    healthy
        .send(CDS, &[], &r.version_info, &r.nonce, None)
        .await;
    // Many updates above the large-response size: the stuck streams fill up, the healthy
    // one keeps receiving every generation up to the last.
    let big = "x".repeat(2 << 20);
    for generation in 2..30u64 {
        let version = format!("{generation}-{big}");
        srv.source.publish(snapshot(
            generation,
            &[(ResourceType::Cluster, "a", &version)],
        ));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = tokio::time::timeout_at(deadline, healthy.rx.message())
            .await
            .expect("the healthy client kept receiving")
            .unwrap()
            .unwrap();
        healthy
            .send(CDS, &[], &r.version_info, &r.nonce, None)
            .await;
        if names(&r).first().is_some_and(|n| n.starts_with("a@29-")) {
            break;
        }
    }
    drop(stuck);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_unknown_types_are_ignored() {
    let srv = server(base()).await;
    let mut s = Sotw::open(srv.port).await;
    s.send(
        "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
        &["x"],
        "",
        "",
        None,
    )
    .await;
    s.send("", &[], "", "", None).await;
    s.quiet().await;
    // The stream still works afterwards.
    s.send(LDS, &[], "", "", None).await;
    assert_eq!(names(&s.next().await), ["l@1"]);
}
