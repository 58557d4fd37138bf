//! Parsing Pomerium Policy Language from the config tree. Errors are config diagnostics with
//! lines; messages follow Pomerium's where it has them.

use base64::Engine;

use crate::document::decode::{KeyPath, did_you_mean};
use crate::document::diag::{Diagnostics, Span};
use crate::document::yaml::{self, Node, NodeKind};

use super::ast::{
    Action, CertificateMatcher, Cidr, Criterion, ListMatcher, ListOp, Rule, StringMatcher, StringOp,
};

const CRITERIA: &[&str] = &[
    "accept",
    "reject",
    "authenticated_user",
    "user",
    "email",
    "domain",
    "claim",
    "groups",
    "http_method",
    "http_path",
    "source_ip",
    "cors_preflight",
    "client_certificate",
    "invalid_client_certificate",
];

/// Pomerium criteria that exist but are not part of sluice.
const UNSUPPORTED_CRITERIA: &[&str] = &[
    "device",
    "mcp_tool",
    "ssh_username",
    "ssh_username_matches_email",
    "ssh_username_matches_claim",
    "ssh_publickey",
    "ssh_ca",
    "date",
    "day_of_week",
    "time_of_day",
    "record",
    "pomerium_routes",
];

/// Parses a route's `policy` value: one rule object, a list of them, or a string holding
/// either (as Pomerium accepts). Problems are reported; the rules that parsed are returned.
pub fn parse_policy(node: &Node, path: &KeyPath, diags: &mut Diagnostics) -> Vec<Rule> {
    if let Some(text) = node.as_str() {
        return match yaml::parse(text) {
            // Only one level: a string that parses to another string (`policy: allow`) is
            // reported below as not being a policy, never unwrapped again.
            Ok(Some(inner)) => parse_policy_value(&respan(inner, node.span), path, diags),
            Ok(None) => {
                diags.error(node.span, path, "the policy is empty");
                Vec::new()
            }
            Err(e) => {
                diags.error(
                    node.span,
                    path,
                    format!("the policy string is not valid YAML or JSON: {}", e.message),
                );
                Vec::new()
            }
        };
    }
    parse_policy_value(node, path, diags)
}

fn parse_policy_value(node: &Node, path: &KeyPath, diags: &mut Diagnostics) -> Vec<Rule> {
    match &node.kind {
        NodeKind::Seq(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, item)| parse_rule_object(item, &path.index(i), diags))
            .collect(),
        NodeKind::Map(_) => parse_rule_object(node, path, diags),
        _ => {
            diags.error(
                node.span,
                path,
                format!(
                    "expected a policy (a mapping with `allow` or `deny`, or a list of them), found {}",
                    node.describe()
                ),
            );
            Vec::new()
        }
    }
}

/// Strings holding a policy are parsed separately; point all their problems at the string.
fn respan(mut node: Node, span: Span) -> Node {
    node.span = span;
    node.kind = match node.kind {
        NodeKind::Seq(items) => NodeKind::Seq(items.into_iter().map(|n| respan(n, span)).collect()),
        NodeKind::Map(entries) => NodeKind::Map(
            entries
                .into_iter()
                .map(|(k, v)| (respan(k, span), respan(v, span)))
                .collect(),
        ),
        scalar => scalar,
    };
    node
}

fn entries<'n>(
    node: &'n Node,
    path: &KeyPath,
    diags: &mut Diagnostics,
    what: &str,
) -> Option<&'n [(Node, Node)]> {
    match &node.kind {
        NodeKind::Map(entries) => Some(entries),
        _ => {
            diags.error(
                node.span,
                path,
                format!("expected {what}, found {}", node.describe()),
            );
            None
        }
    }
}

fn parse_rule_object(node: &Node, path: &KeyPath, diags: &mut Diagnostics) -> Vec<Rule> {
    let Some(entries) = entries(node, path, diags, "a mapping with `allow` or `deny`") else {
        return Vec::new();
    };
    let mut rules = Vec::new();
    for (key, value) in entries {
        let name = key.as_str().unwrap_or_default();
        let action = match name {
            "allow" => Action::Allow,
            "deny" => Action::Deny,
            other => {
                diags.error(
                    key.span,
                    path.key(other.to_string()),
                    format!("unsupported action: {other} (a policy has `allow` and `deny` blocks)"),
                );
                continue;
            }
        };
        if let Some(rule) = parse_action_block(action, value, &path.key(name.to_string()), diags) {
            rules.push(rule);
        }
    }
    rules
}

fn parse_action_block(
    action: Action,
    node: &Node,
    path: &KeyPath,
    diags: &mut Diagnostics,
) -> Option<Rule> {
    let entries = entries(
        node,
        path,
        diags,
        "a mapping of `and`, `or`, `not` or `nor` to criteria",
    )?;
    let mut rule = Rule {
        action,
        and: Vec::new(),
        or: Vec::new(),
        not: Vec::new(),
        nor: Vec::new(),
    };
    for (key, value) in entries {
        let name = key.as_str().unwrap_or_default();
        let at = path.key(name.to_string());
        let target = match name {
            "and" => &mut rule.and,
            "or" => &mut rule.or,
            "not" => &mut rule.not,
            "nor" => &mut rule.nor,
            // Pomerium allows and ignores an `action` key here.
            "action" => continue,
            other => {
                diags.error(
                    key.span,
                    &at,
                    format!("unsupported conditional \"{other}\", only and, or, not, nor and action are allowed"),
                );
                continue;
            }
        };
        let NodeKind::Seq(items) = &value.kind else {
            diags.error(
                value.span,
                &at,
                format!("expected a list of criteria, found {}", value.describe()),
            );
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            if let Some(c) = parse_criterion(item, &at.index(i), diags) {
                target.push(c);
            }
        }
    }
    Some(rule)
}

fn parse_criterion(node: &Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<Criterion> {
    let entries = entries(
        node,
        path,
        diags,
        "a criterion such as `email: {is: a@example.com}`",
    )?;
    let [(key, data)] = entries else {
        diags.error(
            node.span,
            path,
            "each criteria may only contain a single key and value",
        );
        return None;
    };
    let full = key.as_str().unwrap_or_default();
    let (name, sub) = match full.split_once('/') {
        Some((n, s)) => (n, Some(s)),
        None => (full, None),
    };
    let at = path.key(full.to_string());
    if sub.is_some() && name != "claim" {
        diags.error(
            key.span,
            &at,
            format!("the `{name}` criterion takes no `/` sub-path"),
        );
        return None;
    }
    let criterion = match name {
        "accept"
        | "reject"
        | "authenticated_user"
        | "cors_preflight"
        | "invalid_client_certificate" => {
            if data.as_str() == Some("false") {
                diags.warning(
                    data.span,
                    &at,
                    format!("`{name}: false` behaves exactly like `{name}: true`: Pomerium ignores this criterion's value; remove the criterion instead"),
                );
            }
            match name {
                "accept" => Criterion::Accept,
                "reject" => Criterion::Reject,
                "authenticated_user" => Criterion::AuthenticatedUser,
                "cors_preflight" => Criterion::CorsPreflight,
                _ => Criterion::InvalidClientCertificate,
            }
        }
        "user" => Criterion::User(string_matcher(data, &at, diags)?),
        "email" => Criterion::Email(string_matcher(data, &at, diags)?),
        "domain" => Criterion::Domain(string_matcher(data, &at, diags)?),
        "http_method" => Criterion::HttpMethod(string_matcher(data, &at, diags)?),
        "http_path" => Criterion::HttpPath(string_matcher(data, &at, diags)?),
        "groups" => Criterion::Groups(list_matcher(data, &at, diags)?),
        "claim" => match sub.filter(|s| !s.is_empty()) {
            Some(claim) => Criterion::Claim {
                name: claim.to_string(),
                matcher: list_matcher(data, &at, diags)?,
            },
            None => {
                diags.error(
                    key.span,
                    &at,
                    "the claim criterion needs a claim name, as in `claim/email`",
                );
                return None;
            }
        },
        "source_ip" => Criterion::SourceIp(cidrs(data, &at, diags)?),
        "client_certificate" => {
            Criterion::ClientCertificate(certificate_matcher(data, &at, diags)?)
        }
        other if UNSUPPORTED_CRITERIA.contains(&other) => {
            diags.error(
                key.span,
                &at,
                format!(
                    "the `{other}` criterion is a Pomerium feature that sluice does not support"
                ),
            );
            return None;
        }
        other => {
            let hint = did_you_mean(other, CRITERIA)
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            diags.error(
                key.span,
                &at,
                format!("unknown policy criterion: {other}{hint}"),
            );
            return None;
        }
    };
    Some(criterion)
}

fn string_matcher(node: &Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<StringMatcher> {
    if let Some(text) = node.as_str() {
        return Some(StringMatcher(vec![StringOp::Is(text.to_string())]));
    }
    let entries = entries(
        node,
        path,
        diags,
        "a string or a string matcher (is, not, contains, starts_with, ends_with, in, not_in)",
    )?;
    let mut ops = Vec::new();
    let mut ok = true;
    for (key, value) in entries {
        let op = key.as_str().unwrap_or_default();
        let at = path.key(op.to_string());
        let parsed = match op {
            "in" | "not_in" => string_array(value, &at, diags, op).map(|v| {
                if op == "in" {
                    StringOp::In(v)
                } else {
                    StringOp::NotIn(v)
                }
            }),
            "is" | "not" | "contains" | "starts_with" | "ends_with" => match value.as_str() {
                Some(v) => Some(match op {
                    "is" => StringOp::Is(v.to_string()),
                    "not" => StringOp::Not(v.to_string()),
                    "contains" => StringOp::Contains(v.to_string()),
                    "starts_with" => StringOp::StartsWith(v.to_string()),
                    _ => StringOp::EndsWith(v.to_string()),
                }),
                None => {
                    diags.error(
                        value.span,
                        &at,
                        format!(
                            "the `{op}` matcher needs a string, found {}",
                            value.describe()
                        ),
                    );
                    None
                }
            },
            other => {
                diags.error(
                    key.span,
                    &at,
                    format!("unknown string matcher operator: {other}"),
                );
                None
            }
        };
        match parsed {
            Some(op) => ops.push(op),
            None => ok = false,
        }
    }
    if ops.is_empty() && ok {
        diags.error(
            node.span,
            path,
            "the matcher is empty; give at least one operator such as `is`",
        );
        return None;
    }
    ok.then_some(StringMatcher(ops))
}

fn string_array(
    node: &Node,
    path: &KeyPath,
    diags: &mut Diagnostics,
    op: &str,
) -> Option<Vec<String>> {
    match &node.kind {
        NodeKind::Seq(items) if items.iter().all(|i| i.as_str().is_some()) => Some(
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
        ),
        _ => {
            diags.error(
                node.span,
                path,
                format!("{op} matcher requires an array of strings"),
            );
            None
        }
    }
}

fn list_matcher(node: &Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<ListMatcher> {
    if node.as_scalar().is_some() {
        return Some(ListMatcher(vec![ListOp::Has(node.to_json())]));
    }
    let entries = entries(
        node,
        path,
        diags,
        "a value or a list matcher (has, is, exclude)",
    )?;
    let mut ops = Vec::new();
    let mut ok = true;
    for (key, value) in entries {
        let op = key.as_str().unwrap_or_default();
        if value.as_scalar().is_none() {
            diags.error(
                value.span,
                path.key(op.to_string()),
                format!(
                    "the `{op}` matcher needs a single value, found {}",
                    value.describe()
                ),
            );
            ok = false;
            continue;
        }
        let v = value.to_json();
        match op {
            "has" => ops.push(ListOp::Has(v)),
            "is" => ops.push(ListOp::Is(v)),
            "exclude" => ops.push(ListOp::Exclude(v)),
            other => {
                diags.error(
                    key.span,
                    path.key(other.to_string()),
                    format!("unknown string list matcher operator: {other}"),
                );
                ok = false;
            }
        }
    }
    if ops.is_empty() && ok {
        diags.error(
            node.span,
            path,
            "the matcher is empty; give at least one operator such as `has`",
        );
        return None;
    }
    ok.then_some(ListMatcher(ops))
}

fn cidrs(node: &Node, path: &KeyPath, diags: &mut Diagnostics) -> Option<Vec<Cidr>> {
    let items: Vec<&Node> = match &node.kind {
        NodeKind::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        match item.as_str().and_then(Cidr::parse) {
            Some(c) => out.push(c),
            None => {
                diags.error(
                    item.span,
                    path,
                    "expected IP or CIDR range, such as 10.0.0.0/8 or 192.0.2.7",
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn certificate_matcher(
    node: &Node,
    path: &KeyPath,
    diags: &mut Diagnostics,
) -> Option<CertificateMatcher> {
    let NodeKind::Map(entries) = &node.kind else {
        diags.error(node.span, path, "expected object for certificate matcher");
        return None;
    };
    let mut m = CertificateMatcher::default();
    let mut ok = true;
    for (key, value) in entries {
        let name = key.as_str().unwrap_or_default();
        let at = path.key(name.to_string());
        let values = || -> Vec<&Node> {
            match &value.kind {
                NodeKind::Seq(items) => items.iter().collect(),
                _ => vec![value],
            }
        };
        match name {
            "fingerprint" => {
                for v in values() {
                    match v.as_str().and_then(normalize_fingerprint) {
                        Some(f) => m.fingerprint.push(f),
                        None => {
                            diags.error(v.span, &at, "a fingerprint is 64 lowercase hex characters, or 32 uppercase hex bytes separated by colons");
                            ok = false;
                        }
                    }
                }
            }
            "spki_hash" => {
                for v in values() {
                    let decoded = v
                        .as_str()
                        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok());
                    match decoded {
                        Some(bytes) if bytes.len() == 32 => {
                            m.spki_hash.push(v.as_str().unwrap_or_default().to_string())
                        }
                        _ => {
                            diags.error(
                                v.span,
                                &at,
                                "an spki_hash is the base64 of a SHA-256 hash (32 bytes)",
                            );
                            ok = false;
                        }
                    }
                }
            }
            "san_email" => {
                m.san_email = string_matcher(value, &at, diags).or_else(|| {
                    ok = false;
                    None
                })
            }
            "san_dns" => {
                m.san_dns = string_matcher(value, &at, diags).or_else(|| {
                    ok = false;
                    None
                })
            }
            "san_uri" => {
                m.san_uri = string_matcher(value, &at, diags).or_else(|| {
                    ok = false;
                    None
                })
            }
            other => {
                diags.error(
                    key.span,
                    &at,
                    format!("unsupported certificate matcher condition: {other}"),
                );
                ok = false;
            }
        }
    }
    ok.then_some(m)
}

fn normalize_fingerprint(text: &str) -> Option<String> {
    let plain = text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if plain {
        return Some(text.to_string());
    }
    let parts: Vec<&str> = text.split(':').collect();
    let colon_form = parts.len() == 32
        && parts.iter().all(|p| {
            p.len() == 2
                && p.bytes()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        });
    colon_form.then(|| parts.concat().to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse_text(text: &str) -> (Vec<Rule>, Vec<String>) {
        let node = yaml::parse(text).unwrap().unwrap();
        let mut diags = Diagnostics::new(Path::new("t.yaml"));
        let rules = parse_policy(&node, &KeyPath::root().key("policy"), &mut diags);
        let messages = diags
            .into_sorted()
            .into_iter()
            .map(|d| d.to_string())
            .collect();
        (rules, messages)
    }

    #[test]
    fn parses_every_operator_and_matcher() {
        let (rules, errors) = parse_text(
            "allow:\n  and:\n    - email: {ends_with: '@example.com', not: 'x@example.com'}\n    - claim/groups: {has: admin, exclude: interns}\n  or:\n    - http_method: {in: [GET, HEAD]}\ndeny:\n  or:\n    - source_ip: [10.0.0.0/8, 192.0.2.1]\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].and.len(), 2);
        assert_eq!(rules[1].action, Action::Deny);
    }

    #[test]
    fn reports_pomerium_messages_with_lines() {
        let (_, errors) = parse_text(
            "allow:\n  xor:\n    - accept: true\n  and:\n    - emial: a@b.c\n    - email: {like: x}\n    - email: {in: x}\n    - {user: a, email: b}\n    - claim: x\n",
        );
        let all = errors.join("\n");
        assert!(
            all.contains(":2:3: error: policy.allow.xor: unsupported conditional \"xor\""),
            "{all}"
        );
        assert!(all.contains(":5:7: error: policy.allow.and[0].emial: unknown policy criterion: emial; did you mean `email`?"), "{all}");
        assert!(
            all.contains("unknown string matcher operator: like"),
            "{all}"
        );
        assert!(
            all.contains("in matcher requires an array of strings"),
            "{all}"
        );
        assert!(
            all.contains("each criteria may only contain a single key and value"),
            "{all}"
        );
        assert!(all.contains("needs a claim name"), "{all}");
    }

    #[test]
    fn a_policy_may_be_a_json_string() {
        let (rules, errors) = parse_text("'{\"allow\": {\"or\": [{\"accept\": true}]}}'");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(rules[0].or, vec![Criterion::Accept]);
    }

    #[test]
    fn fingerprints_normalize() {
        let colon = (0..32).map(|_| "AB").collect::<Vec<_>>().join(":");
        assert_eq!(normalize_fingerprint(&colon), Some("ab".repeat(32)));
        assert!(normalize_fingerprint("xyz").is_none());
    }
}
