//! Bad input at the wire, against the real `sluice serve`: bytes that are not HTTP/2, gRPC
//! frames that are not protobuf, ADS streams with unknown types, megabyte nonces and NACK
//! storms, a thousand streams opened and dropped, and Check requests with ten thousand
//! headers or megabyte values. Each gets a clean error or answer, sluice's memory stays
//! bounded, and a well-behaved client is served promptly throughout.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::core::v3::Node;
use envoy_types::pb::envoy::service::discovery::v3::DeltaDiscoveryRequest;
use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use envoy_types::pb::google::rpc::Status as RpcStatus;
use tokio_stream::wrappers::ReceiverStream;

use crate::authz_e2e::{check_client, check_with, status_of};
use crate::common::grpc;
use crate::common::process::rss_mib;
use crate::common::sluice::{Ports, Sluice};

const CDS: &str = "type.googleapis.com/envoy.config.cluster.v3.Cluster";

fn config(ports: &Ports) -> String {
    format!(
        "{}routes:\n  - from: http://app.test\n    to: http://127.0.0.1:1\n    allowed_domains: [example.com]\n  - from: http://open.test\n    to: http://127.0.0.1:1\n    allow_public_unauthenticated_access: true\n",
        ports.globals()
    )
}

fn request(type_url: &str, node_id: &str) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        node: Some(Node {
            id: node_id.into(),
            cluster: "test".into(),
            ..Default::default()
        }),
        type_url: type_url.into(),
        ..Default::default()
    }
}

/// How long a fresh, well-behaved delta client waits for its first CDS response.
async fn good_client_latency(port: u16) -> Duration {
    let started = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://127.0.0.1:{port}"))
        .await
        .expect("connect");
    tx.send(request(CDS, "good")).await.unwrap();
    let mut stream = client
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await
        .expect("stream")
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.message())
        .await
        .expect("a response within 5 s")
        .expect("a message")
        .expect("not the end");
    assert_eq!(first.type_url, CDS);
    started.elapsed()
}

#[test]
fn ads_survives_garbage_huge_nonces_nack_storms_and_connection_churn() {
    let ports = Ports::new();
    let sluice = Sluice::start(ports, &config(&ports));
    let pid = sluice.guard.pid();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let baseline = rt.block_on(good_client_latency(ports.grpc));
    let rss_before = rss_mib(pid);

    // Not HTTP/2 at all: the connection is closed, nothing else happens.
    for garbage in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[0u8; 4096][..],
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\xff",
    ] {
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", ports.grpc)).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = tcp.write_all(garbage);
        let mut sink = Vec::new();
        let _ = tcp.read_to_end(&mut sink);
    }

    let during = rt.block_on(async {
        // A gRPC frame that is not a DeltaDiscoveryRequest: the stream ends with an error.
        let h2c = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
        let reply = h2c
            .post(format!(
                "http://127.0.0.1:{}/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources",
                ports.grpc
            ))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(grpc::frame(&[0xff; 64]))
            .send()
            .await
            .expect("an HTTP/2 answer");
        assert_eq!(reply.status(), 200);
        let _ = tokio::time::timeout(Duration::from_secs(5), reply.bytes()).await;

        let mut client = AggregatedDiscoveryServiceClient::connect(format!("http://127.0.0.1:{}", ports.grpc))
            .await
            .unwrap();
        // Unknown types, a megabyte nonce, then a storm of NACKs with long error texts.
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tx.send(request("type.googleapis.com/no.such.Type", "abuser")).await.unwrap();
        tx.send(request(CDS, "abuser")).await.unwrap();
        let mut stream = client
            .delta_aggregated_resources(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        let first = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("CDS answered despite the unknown type")
            .unwrap()
            .unwrap();
        let nonce = first.nonce.clone();
        let mut huge = request(CDS, "abuser");
        huge.response_nonce = "n".repeat(1 << 20);
        tx.send(huge).await.unwrap();
        let storm = tokio::spawn(async move {
            for i in 0..1000 {
                let mut nack = request(CDS, "abuser");
                nack.response_nonce = if i % 2 == 0 { nonce.clone() } else { format!("bogus-{i}") };
                nack.error_detail = Some(RpcStatus {
                    code: 3,
                    message: "x".repeat(4096),
                    details: Vec::new(),
                });
                if tx.send(nack).await.is_err() {
                    break;
                }
            }
            tx
        });
        // Meanwhile a well-behaved client is not delayed.
        let during = good_client_latency(ports.grpc).await;
        assert!(
            during < baseline + Duration::from_secs(1),
            "a NACK storm delayed another client: {during:?} (alone: {baseline:?})"
        );
        let tx = storm.await.unwrap();
        drop(tx);
        while let Ok(Ok(Some(_))) = tokio::time::timeout(Duration::from_millis(500), stream.message()).await {}

        // A thousand streams opened and dropped, some mid-request.
        for i in 0..1000 {
            let (tx, rx) = tokio::sync::mpsc::channel(2);
            let _ = tx.send(request(CDS, &format!("churn-{}", i % 50))).await;
            let stream = client.delta_aggregated_resources(ReceiverStream::new(rx)).await;
            if i % 3 == 0
                && let Ok(s) = stream
            {
                let mut s = s.into_inner();
                let _ = tokio::time::timeout(Duration::from_secs(2), s.message()).await;
            }
            drop(tx);
        }
        during
    });

    // sluice forgets every dropped stream, and its memory is bounded.
    let gone = crate::common::process::poll(Duration::from_secs(10), || {
        let envoys = sluice.try_status()?["envoys"].as_array()?.len();
        (envoys == 0).then_some(())
    });
    assert!(
        gone.is_some(),
        "dropped streams are still listed: {}",
        sluice.status()["envoys"]
    );
    let rss_after = rss_mib(pid);
    assert!(
        rss_after < rss_before + 48.0,
        "sluice's memory grew from {rss_before:.1} to {rss_after:.1} MiB"
    );
    let after = rt.block_on(good_client_latency(ports.grpc));
    assert!(
        after < Duration::from_secs(2),
        "sluice is slow after the abuse: {after:?}"
    );
    let status = sluice.status();
    assert!(
        !status.to_string().contains(&"n".repeat(1024)),
        "a megabyte nonce ended up in status"
    );
    println!(
        "wire abuse (ADS): a good client served in {:.1} ms alone, {:.1} ms during a 1,000-NACK storm, {:.1} ms after; sluice RSS {rss_before:.1} -> {rss_after:.1} MiB after 1,000 dropped streams",
        baseline.as_secs_f64() * 1e3,
        during.as_secs_f64() * 1e3,
        after.as_secs_f64() * 1e3
    );
}

#[test]
fn check_answers_huge_and_malformed_requests_cleanly() {
    let ports = Ports::new();
    let sluice = Sluice::start(ports, &config(&ports));
    let (rt, mut client) = check_client(&ports);
    let pid = sluice.guard.pid();
    let rss_before = rss_mib(pid);
    let mut check = |req| rt.block_on(client.check(req));

    // Ten thousand headers, and megabyte values: decided (no credentials, so 401), not crashed.
    let many: Vec<(String, String)> = (0..10_000)
        .map(|i| (format!("x-header-{i}"), format!("value-{i}")))
        .collect();
    let many_refs: Vec<(&str, &str)> = many
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([("accept", "application/json")])
        .collect();
    let answer = check(check_with("app.test", &[], &many_refs)).expect("answered");
    assert_eq!(
        status_of(&answer.into_inner()),
        404,
        "no route id: not found"
    );
    let big = "v".repeat(1 << 20);
    for header in ["authorization", "cookie", "x-forwarded-for", "user-agent"] {
        let answer = check(check_with("app.test", &[], &[(header, &big)])).expect("answered");
        assert!(status_of(&answer.into_inner()) >= 400, "a 1 MiB {header}");
    }

    // Bytes that are not a CheckRequest: invalid UTF-8 in the method (attributes.request.
    // http.method, a field sluice reads), truncated fields, no protobuf at all.
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let grpc_status_of = |method: &str, body: &[u8]| {
        let reply = rt
            .block_on(
                h2c.post(format!(
                    "http://127.0.0.1:{}/envoy.service.auth.v3.Authorization/{method}",
                    ports.grpc
                ))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(grpc::frame(body))
                .send(),
            )
            .expect("an HTTP/2 answer");
        assert_eq!(reply.status(), 200);
        reply
            .headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap_or("").to_string())
    };
    for body in [
        vec![
            0x0a, 0x09, 0x22, 0x07, 0x12, 0x05, 0x12, 0x03, 0xff, 0xfe, 0xfd,
        ],
        vec![0x0a, 0xff, 0xff, 0xff, 0x0f],
        vec![0xff; 100],
    ] {
        let grpc_status = grpc_status_of("Check", &body);
        assert!(
            grpc_status.as_deref().is_some_and(|s| s != "0"),
            "malformed Check must end in a gRPC error, got {grpc_status:?}"
        );
    }
    // A method the service does not have: UNIMPLEMENTED (12), as from a generated server.
    assert_eq!(grpc_status_of("Other", &[]).as_deref(), Some("12"));
    // Still deciding, still small.
    let answer = check(check_with("open.test", &[], &[])).expect("answered");
    assert_eq!(status_of(&answer.into_inner()), 404);
    let rss_after = rss_mib(pid);
    assert!(
        rss_after < rss_before + 64.0,
        "memory {rss_before:.1} -> {rss_after:.1} MiB"
    );
    assert!(sluice.try_status().is_some(), "sluice is alive");
}

/// Writes its first 24 bytes (the HTTP/2 preface) one `write` at a time, then the rest as asked.
struct Trickle {
    tcp: tokio::net::TcpStream,
    written: usize,
}

impl tokio::io::AsyncRead for Trickle {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().tcp).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Trickle {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let limit = if this.written < 24 { 1 } else { buf.len() };
        let written = std::task::ready!(
            std::pin::Pin::new(&mut this.tcp).poll_write(cx, &buf[..limit.min(buf.len())])
        )?;
        this.written += written;
        std::task::Poll::Ready(Ok(written))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// sluice reads the HTTP/2 preface however it is split, joins a Check sent in several DATA
/// frames, refuses one over 4 MiB with RESOURCE_EXHAUSTED (at once when its prefix says so),
/// and still answers HTTP/1.1 on the same port.
#[test]
fn checks_in_pieces_oversized_checks_and_slow_prefaces() {
    use prost::Message;
    let ports = Ports::new();
    let sluice = Sluice::start(ports, &config(&ports));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", ports.grpc))
            .await
            .expect("connect");
        tcp.set_nodelay(true).unwrap();
        let (mut sender, connection) = h2::client::handshake(Trickle { tcp, written: 0 })
            .await
            .expect("an HTTP/2 handshake, preface a byte at a time");
        tokio::spawn(connection);

        let message = check_with("open.test", &[], &[("accept", "text/html")]).encode_to_vec();
        let framed = grpc::frame(&message);
        let whole = grpc::h2_check(&mut sender, vec![framed.clone()]).await;
        assert_eq!(whole.0.as_deref(), Some("0"), "answered whole");
        let pieces = vec![framed.slice(..3), framed.slice(3..9), framed.slice(9..)];
        let split = grpc::h2_check(&mut sender, pieces).await;
        assert_eq!(split, whole, "three DATA frames answer as one");
        let answer = envoy_types::ext_authz::v3::pb::CheckResponse::decode(&split.1[5..])
            .expect("a CheckResponse");
        assert_eq!(status_of(&answer), 404, "no route id: not found");

        let huge = grpc::frame(&vec![0x0a; 5 << 20]);
        let chunks: Vec<bytes::Bytes> = (0..huge.len())
            .step_by(1 << 20)
            .map(|at| huge.slice(at..(at + (1 << 20)).min(huge.len())))
            .collect();
        let (status, body) = grpc::h2_check(&mut sender, chunks).await;
        assert_eq!(
            status.as_deref(),
            Some("8"),
            "over 4 MiB: RESOURCE_EXHAUSTED"
        );
        assert!(body.is_empty());
        // A prefix that declares 5 MiB is refused at once, before the body has come.
        let request = http::Request::post(grpc::CHECK_PATH)
            .header("content-type", "application/grpc")
            .body(())
            .unwrap();
        let (response, mut send) = sender.send_request(request, false).expect("a stream");
        let declared = (5u32 << 20).to_be_bytes();
        let head = [
            0,
            declared[0],
            declared[1],
            declared[2],
            declared[3],
            0x0a,
            0x00,
        ];
        send.send_data(bytes::Bytes::copy_from_slice(&head), false)
            .expect("DATA");
        let response = tokio::time::timeout(Duration::from_secs(5), response)
            .await
            .expect("answered before the body ends")
            .expect("a response");
        assert_eq!(
            response.headers().get("grpc-status").map(|v| v.as_bytes()),
            Some(&b"8"[..]),
            "a declared length over 4 MiB: RESOURCE_EXHAUSTED"
        );
        drop(send);
        let again = grpc::h2_check(&mut sender, vec![framed]).await;
        assert_eq!(again, whole, "the connection still serves Checks");
    });
    // HTTP/1.1 on the same port.
    assert!(sluice.try_status().is_some(), "status over HTTP/1.1");
}
