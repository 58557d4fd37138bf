//! The same model always renders byte-identical output, and the order in which map-typed keys
//! (headers, claims) are written does not change it.

use std::path::Path;

use proptest::prelude::*;
use sluice::envoy::bootstrap::{NodeIdentity, render};
use sluice::envoy::json::to_json;

fn rendered(config: &str) -> String {
    let model = sluice::config::load_bytes(Path::new("prop.yaml"), config.as_bytes())
        .expect("generated config is valid");
    let ir = sluice::ir::build(&model);
    let node = NodeIdentity {
        id: "prop".into(),
        cluster: "sluice".into(),
    };
    let json = to_json(&render(&ir, &model.global.envoy_admin_address, &node)).expect("renders");
    sluice::format::yaml::to_string(&json)
}

fn mapping(indent: &str, pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{indent}{k}: \"{v}\"\n"))
        .collect()
}

fn config(
    headers: &[(String, String)],
    response: &[(String, String)],
    claims: &[(String, String)],
    global: &[(String, String)],
) -> String {
    format!(
        "insecure_server: true\naddress: 127.0.0.1:8080\njwt_claims_headers:\n{}set_response_headers:\n{}routes:\n  - from: http://a.example.com\n    to: [\"http://10.0.0.1:80,3\", \"http://10.0.0.2:80,1\"]\n    set_request_headers:\n{}    set_response_headers:\n{}    allowed_idp_claims:\n{}  - from: http://b.example.com\n    to: http://10.0.0.3\n    allowed_users: [u@example.com]\n",
        mapping("  ", global),
        mapping("  ", response),
        mapping("      ", headers),
        mapping("      ", response),
        mapping("      ", claims),
    )
}

fn pairs(prefix: &'static str) -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::btree_map("[a-z]{1,8}", "[a-zA-Z0-9 ;=]{0,12}", 1..6).prop_map(move |m| {
        m.into_iter()
            .map(|(k, v)| (format!("{prefix}{k}"), v))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn shuffled_maps_render_identically(
        headers in pairs("x-req-"),
        response in pairs("x-res-"),
        claims in pairs("claim-"),
        global in pairs("x-claim-"),
        seed in any::<u64>(),
    ) {
        let original = config(&headers, &response, &claims, &global);
        let first = rendered(&original);
        // Rendering twice is byte-identical.
        prop_assert_eq!(&first, &rendered(&original));
        // Writing the same maps in another order changes nothing.
        let shuffle = |v: &[(String, String)], salt: u64| {
            let mut v = v.to_vec();
            v.sort_by_key(|(k, _)| (k.bytes().fold(seed ^ salt, |h, b| h.rotate_left(5) ^ u64::from(b)), k.clone()));
            v
        };
        let shuffled = config(&shuffle(&headers, 1), &shuffle(&response, 2), &shuffle(&claims, 3), &shuffle(&global, 4));
        prop_assert_eq!(first, rendered(&shuffled));
    }
}
