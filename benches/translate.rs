//! Translation benchmark: a 10,000-route config → validated model → IR → encoded Envoy
//! resources (what xDS serves). Prints the median time of each stage over several runs and
//! the peak heap of the whole pipeline (targets: translation under 100 ms, peak under 64 MiB,
//! on the 2-core build machine). Run with `cargo bench --bench translate`.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mimalloc::MiMalloc;

/// Counts live heap bytes and their high-water mark, over the allocator sluice ships with.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Counting makes every allocation touch shared atomics, which slows the threads down; it is
/// on only for the run that measures memory, never for the timed runs.
static COUNTING: AtomicBool = AtomicBool::new(false);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { MiMalloc.alloc(layout) };
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { MiMalloc.dealloc(p, layout) };
        if COUNTING.load(Ordering::Relaxed) {
            // Frees of memory allocated before counting began are not subtracted below zero.
            let _ = LIVE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |live| {
                Some(live.saturating_sub(layout.size()))
            });
        }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ROUTES: usize = 10_000;
const RUNS: usize = 9;

/// A config shaped like a large real deployment: 2,000 hosts with five routes each, every
/// route with a policy, some with PPL, headers, rewrites, websockets and weighted upstreams.
fn config() -> String {
    let mut out = String::from("insecure_server: true\naddress: 127.0.0.1:8080\nroutes:\n");
    for i in 0..ROUTES {
        let host = i / 5;
        let path = ["/api/", "/static/", "/events", "/ws", "/"][i % 5];
        out.push_str(&format!(
            "  - from: https://app{host}.example.com\n    prefix: {path}\n"
        ));
        match i % 4 {
            0 => out.push_str(&format!("    to: http://10.{}.{}.{}:8080\n", (i >> 16) & 255, (i >> 8) & 255, i & 255)),
            1 => out.push_str(&format!("    to:\n      - http://svc{host}-a.internal:80,3\n      - http://svc{host}-b.internal:80,1\n")),
            2 => out.push_str(&format!("    to: http://svc{host}.internal:8080\n    allow_websockets: true\n")),
            _ => out.push_str(&format!("    to: http://10.0.{}.{}:9000\n    timeout: 2m\n    idle_timeout: 10m\n", (i >> 8) & 255, i & 255)),
        }
        match i % 3 {
            0 => out.push_str("    allowed_domains: [example.com]\n    allowed_users: [alice@example.com, bob@example.com]\n"),
            1 => out.push_str("    policy:\n      allow:\n        and:\n          - email: {ends_with: '@example.com'}\n          - claim/groups: {has: engineering}\n      deny:\n        or:\n          - http_path: {starts_with: /admin}\n"),
            _ => out.push_str("    allow_any_authenticated_user: true\n    set_request_headers:\n      X-Team: platform\n    set_response_headers:\n      Cache-Control: no-store\n    remove_request_headers: [X-Debug]\n"),
        }
    }
    out
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

fn main() {
    let text = config();
    let path = std::path::Path::new("bench.yaml");
    let (mut load, mut build, mut encode, mut total) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut counts = (0, 0, 0, 0);
    for _ in 0..RUNS {
        let start = Instant::now();
        let model =
            sluice::config::load_bytes(path, text.as_bytes()).expect("the bench config is valid");
        let loaded = start.elapsed();
        let ir = sluice::ir::build(&model);
        let built = start.elapsed();
        let envoy_routes = ir
            .route_configs
            .iter()
            .flat_map(|r| &r.virtual_hosts)
            .map(|v| v.routes.len())
            .sum();
        let resources = sluice::envoy::encode(ir);
        let done = start.elapsed();
        let bytes: usize = [
            &resources.listeners,
            &resources.route_configs,
            &resources.clusters,
            &resources.secrets,
        ]
        .iter()
        .flat_map(|kind| kind.iter())
        .map(|r| r.bytes.len())
        .sum();
        counts = (
            model.routes.len(),
            resources.clusters.len(),
            envoy_routes,
            bytes,
        );
        load.push(loaded);
        build.push(built - loaded);
        encode.push(done - built);
        total.push(done);
        drop((model, resources));
    }
    // One more run, counted, for memory. Only memory allocated from here on counts, so the
    // config text (the input) is not part of the figure.
    COUNTING.store(true, Ordering::Relaxed);
    let mib = |bytes: usize| bytes as f64 / (1024.0 * 1024.0);
    let model =
        sluice::config::load_bytes(path, text.as_bytes()).expect("the bench config is valid");
    let model_bytes = LIVE.load(Ordering::Relaxed);
    let ir = sluice::ir::build(&model);
    let ir_bytes = LIVE.load(Ordering::Relaxed) - model_bytes;
    let resources = sluice::envoy::encode(ir);
    let encoded_bytes = LIVE.load(Ordering::Relaxed) - model_bytes;
    let signer = std::sync::Arc::new(sluice::authz::signer::Signer::generate());
    let before_index = LIVE.load(Ordering::Relaxed);
    let index = sluice::authz::Index::new(std::sync::Arc::new(model), signer);
    let index_bytes = LIVE.load(Ordering::Relaxed) - before_index;
    let peak_mib = mib(PEAK.load(Ordering::Relaxed));
    let held_mib = mib(before_index);
    COUNTING.store(false, Ordering::Relaxed);
    drop((index, resources));
    let breakdown = format!(
        "heap by stage (10,000 routes): validated model {:.1} MiB, IR {:.1} MiB (dropped after encoding), encoded resources {:.1} MiB, ext_authz index {:.1} MiB",
        mib(model_bytes),
        mib(ir_bytes),
        mib(encoded_bytes),
        mib(index_bytes)
    );
    let (routes, clusters, envoy_routes, bytes) = counts;
    println!(
        "config: {routes} routes, {} KiB of YAML -> {clusters} clusters, {envoy_routes} Envoy routes, {} KiB encoded",
        text.len() / 1024,
        bytes / 1024
    );
    println!(
        "median of {RUNS} runs on {} core(s):",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let (l, b, e, t) = (median(load), median(build), median(encode), median(total));
    println!("  load (YAML parse + validation)         {l:6.1} ms");
    println!("  build IR                               {b:6.1} ms");
    println!("  encode Envoy resources                 {e:6.1} ms");
    println!(
        "  translate (validated config -> Envoy)  {:6.1} ms  (target < 100 ms)",
        b + e
    );
    println!("  end to end (file bytes -> Envoy)       {t:6.1} ms");
    println!(
        "peak heap, whole pipeline: {peak_mib:.1} MiB (target < 64 MiB); held afterwards (model + encoded resources): {held_mib:.1} MiB"
    );
    println!("{breakdown}");
    incremental_edits(&text, path, t);
}

/// A reload as `sluice serve` does it after a one-route edit (one route's timeout changes,
/// the file keeps its line count): the loader reuses the routes validated last time and the
/// encoder the resources whose version is unchanged. Beside it, the full pipeline's time from
/// the same process.
fn incremental_edits(text: &str, path: &std::path::Path, full_ms: f64) {
    use sluice::app::state::Published;
    use sluice::app::translate::Translator;
    let mut loader = sluice::config::validate::Incremental::new();
    let mut translator = Translator::new();
    let (first, _) = loader.load(path, text.as_bytes());
    let first = first.expect("valid");
    let mut previous = translator.snapshot(&first, 1, &Default::default());
    let signer = std::sync::Arc::new(sluice::authz::signer::Signer::generate());
    let mut published = Published::new(previous.clone(), first, &signer);
    let mut hosts = None;
    let (mut load, mut rest, mut index, mut total) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut reuse = None;
    for run in 0..RUNS {
        // The first route with a two-minute timeout gets 3, 4, ... minutes.
        let edited = text.replacen("timeout: 2m\n", &format!("timeout: {}m\n", 3 + run), 1);
        let start = Instant::now();
        let (model, r) = loader.load(path, edited.as_bytes());
        let model = model.expect("the edit is valid");
        let loaded = start.elapsed();
        let (snapshot, h) = translator.snapshot_and_reuse(&model, 2 + run as u64, &previous);
        let translated = start.elapsed();
        assert!(
            !snapshot.same_content(&previous),
            "the edit changes a resource"
        );
        // What `serve` publishes besides the snapshot: ext_authz's route index.
        let next = Published::after(snapshot.clone(), model, &signer, Some(&published));
        let done = start.elapsed();
        load.push(loaded);
        rest.push(translated - loaded);
        index.push(done - translated);
        total.push(done);
        reuse = Some(r);
        hosts = Some(h);
        previous = snapshot;
        published = next;
    }
    let reuse = reuse.expect("ran");
    let hosts = hosts.expect("ran");
    let (l, r, x, t) = (median(load), median(rest), median(index), median(total));
    println!(
        "one-route edit, incremental (median of {RUNS}; {} routes reused, {} validated; {} hosts reused, {} built):",
        reuse.reused, reuse.validated, hosts.hosts_reused, hosts.hosts_built
    );
    println!("  load (split, hash, validate the changed route)  {l:6.1} ms");
    println!("  translate the changed host (the others reused) {r:6.1} ms");
    println!("  ext_authz route index for the new generation   {x:6.1} ms");
    println!(
        "  reload work, file bytes -> snapshot            {t:6.1} ms  (target < 25 ms; full pipeline {full_ms:.1} ms, {:.1}x faster)",
        full_ms / t
    );
}
