//! Decoding one Check: Envoy's CheckRequest bytes into envoy-types' full message (headers in a
//! `HashMap`) against sluice's lean `authz::wire::CheckRequest` (only the fields a decision
//! reads, headers in a list, text sliced out of the received buffer and checked to be UTF-8),
//! each followed by the header lookups a decision makes. Both decode from a `Bytes`, as tonic
//! hands them its receive buffer. Same bytes, same process, alternating blocks; prints ns and
//! heap allocations per request and the ratio. Run with `cargo bench --bench check_decode`.

use std::alloc::{GlobalAlloc, Layout};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use envoy_types::pb::envoy::config::core::v3::address::Address;
use envoy_types::pb::envoy::config::core::v3::{Address as AddressMessage, SocketAddress};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use envoy_types::pb::google::protobuf::Timestamp;
use mimalloc::MiMalloc;
use prost::Message;
use sluice::authz::wire;
use sluice::request_headers::RequestHeaders;

/// Counts allocations over the allocator sluice ships with.
struct Counting;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { MiMalloc.alloc(layout) }
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { MiMalloc.dealloc(p, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The headers a decision looks up (credentials, request id, content negotiation, CORS).
const LOOKED_UP: [&str; 6] = [
    "authorization",
    "cookie",
    "x-request-id",
    "accept",
    "content-type",
    "origin",
];

fn peer(ip: &str, port: u32) -> Peer {
    Peer {
        address: Some(AddressMessage {
            address: Some(Address::SocketAddress(SocketAddress {
                address: ip.into(),
                port_specifier: Some(
                    envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier::PortValue(port),
                ),
                ..Default::default()
            })),
        }),
        ..Default::default()
    }
}

/// A Check as Envoy sends it for a browser-ish API call with a bearer token: peers, time,
/// protocol, a dozen headers, the route's context extensions.
fn envoy_check_bytes() -> Bytes {
    let token = format!(
        "Bearer eyJhbGciOiJFUzI1NiJ9.{}.{}",
        "a".repeat(520),
        "s".repeat(86)
    );
    let headers: HashMap<String, String> = [
        (":authority", "app-17.example.com"),
        (":method", "GET"),
        (":path", "/api/items?page=2"),
        (":scheme", "https"),
        ("accept", "application/json"),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) bench"),
        ("x-forwarded-proto", "https"),
        ("x-request-id", "0f7c2b8e-9a41-4c52-8d1e-3b6f0a9c7e21"),
        ("accept-encoding", "gzip, deflate, br"),
        ("accept-language", "en-GB,en;q=0.9"),
        ("x-envoy-expected-rq-timeout-ms", "30000"),
        ("authorization", token.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(peer("127.0.0.1", 51234)),
            destination: Some(peer("127.0.0.1", 8443)),
            request: Some(Request {
                time: Some(Timestamp {
                    seconds: 1_796_000_000,
                    nanos: 123_456,
                }),
                http: Some(HttpRequest {
                    id: "14412939613812766117".into(),
                    method: "GET".into(),
                    headers,
                    path: "/api/items?page=2".into(),
                    host: "app-17.example.com".into(),
                    scheme: "https".into(),
                    protocol: "HTTP/1.1".into(),
                    ..Default::default()
                }),
            }),
            context_extensions: [
                ("route_id", "r-0123456789abcdef"),
                ("route_checksum", "9f3a1c0d5e7b2a64"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..Default::default()
        }),
    }
    .encode_to_vec()
    .into()
}

fn full(bytes: &Bytes) -> usize {
    let request = CheckRequest::decode(bytes.clone()).expect("decodes");
    let http = request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
        .expect("http");
    LOOKED_UP
        .iter()
        .filter_map(|name| http.headers.get(*name))
        .map(String::len)
        .sum()
}

fn lean(bytes: &Bytes) -> usize {
    let request = wire::CheckRequest::decode(bytes.clone()).expect("decodes");
    request.check_text().expect("UTF-8");
    let http = request
        .attributes
        .as_ref()
        .and_then(|a| a.request.as_ref())
        .and_then(|r| r.http.as_ref())
        .expect("http");
    let headers = RequestHeaders(&http.headers);
    LOOKED_UP
        .iter()
        .filter_map(|name| headers.get(name))
        .map(str::len)
        .sum()
}

/// Nanoseconds and allocations per call of `decode` over `n` calls.
fn run(decode: fn(&Bytes) -> usize, bytes: &Bytes, n: u32) -> (Duration, u64) {
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    let started = Instant::now();
    for _ in 0..n {
        black_box(decode(black_box(bytes)));
    }
    (
        started.elapsed() / n,
        (ALLOCATIONS.load(Ordering::Relaxed) - allocations) / u64::from(n),
    )
}

fn main() {
    let bytes = envoy_check_bytes();
    assert_eq!(full(&bytes), lean(&bytes), "both read the same headers");
    const BLOCK: u32 = 20_000;
    const ROUNDS: usize = 15;
    let (mut full_ns, mut lean_ns) = (Vec::new(), Vec::new());
    let (mut full_allocs, mut lean_allocs) = (0, 0);
    run(full, &bytes, BLOCK);
    run(lean, &bytes, BLOCK);
    for _ in 0..ROUNDS {
        let (t, a) = run(full, &bytes, BLOCK);
        full_ns.push(t.as_nanos());
        full_allocs = a;
        let (t, a) = run(lean, &bytes, BLOCK);
        lean_ns.push(t.as_nanos());
        lean_allocs = a;
    }
    full_ns.sort();
    lean_ns.sort();
    let (f, l) = (full_ns[ROUNDS / 2], lean_ns[ROUNDS / 2]);
    println!(
        "Decoding one Check ({} bytes, 12 headers) and looking up {} headers; median of {ROUNDS} alternating blocks of {BLOCK}:",
        bytes.len(),
        LOOKED_UP.len()
    );
    println!(
        "  envoy-types CheckRequest (HashMap headers, String text):   {f:>5} ns, {full_allocs:>2} allocations"
    );
    println!(
        "  sluice's wire::CheckRequest (header list, text as slices): {l:>5} ns, {lean_allocs:>2} allocations"
    );
    println!("  lean / full: {:.2}x the time", l as f64 / f as f64);
}
