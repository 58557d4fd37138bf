//! Pomerium Policy Language, compiled: rules of criteria with typed matchers.

use std::net::IpAddr;

use serde::Serialize;

/// A route's whole policy: every allow and deny rule (shorthands included).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Hash)]
pub struct Policy {
    pub rules: Vec<Rule>,
}

impl Policy {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether every request is allowed whatever it carries: no deny rule, and an allow rule
    /// whose `or` holds `accept` (as `allow_public_unauthenticated_access` writes it).
    pub fn always_allows(&self) -> bool {
        self.rules.iter().all(|r| r.action == Action::Allow)
            && self.rules.iter().any(|r| r.or.contains(&Criterion::Accept))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Allow,
    Deny,
}

/// One `allow:` or `deny:` block. Each non-empty operator list is OR-ed into the action.
#[derive(Clone, Debug, PartialEq, Serialize, Hash)]
pub struct Rule {
    pub action: Action,
    pub and: Vec<Criterion>,
    pub or: Vec<Criterion>,
    /// Every criterion false (Pomerium's `not` is a NOR).
    pub not: Vec<Criterion>,
    /// At least one criterion false (Pomerium's `nor` is a NAND).
    pub nor: Vec<Criterion>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Hash)]
#[serde(rename_all = "snake_case", tag = "criterion", content = "matcher")]
pub enum Criterion {
    Accept,
    Reject,
    AuthenticatedUser,
    User(StringMatcher),
    Email(StringMatcher),
    Domain(StringMatcher),
    /// `claim/<name>`: the name is looked up whole first, then as a `/`- or `.`-separated
    /// path into nested claims (namespaced claims such as `https://x/roles` keep working).
    Claim {
        name: String,
        matcher: ListMatcher,
    },
    Groups(ListMatcher),
    HttpMethod(StringMatcher),
    HttpPath(StringMatcher),
    SourceIp(Vec<Cidr>),
    CorsPreflight,
    ClientCertificate(CertificateMatcher),
    InvalidClientCertificate,
}

impl Criterion {
    /// Criteria that need a signed-in user; without one they ask for sign-in.
    pub fn needs_session(&self) -> bool {
        matches!(
            self,
            Criterion::AuthenticatedUser
                | Criterion::User(_)
                | Criterion::Email(_)
                | Criterion::Domain(_)
                | Criterion::Claim { .. }
                | Criterion::Groups(_)
        )
    }
}

/// All operators must hold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Hash)]
pub struct StringMatcher(pub Vec<StringOp>);

#[derive(Clone, Debug, PartialEq, Serialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum StringOp {
    Is(String),
    Not(String),
    Contains(String),
    StartsWith(String),
    EndsWith(String),
    In(Vec<String>),
    NotIn(Vec<String>),
}

/// Claim values are JSON scalars; they hash by their JSON text.
impl std::hash::Hash for ListOp {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let (tag, value) = match self {
            ListOp::Has(v) => (0u8, v),
            ListOp::Is(v) => (1, v),
            ListOp::Exclude(v) => (2, v),
        };
        tag.hash(state);
        value.to_string().hash(state);
    }
}

/// Matchers over a list of values (claims, groups). All operators must hold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Hash)]
pub struct ListMatcher(pub Vec<ListOp>);

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListOp {
    /// Some element equals the value.
    Has(serde_json::Value),
    /// The list is exactly one element, equal to the value.
    Is(serde_json::Value),
    /// No element equals the value.
    Exclude(serde_json::Value),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Hash)]
pub struct CertificateMatcher {
    /// SHA-256 fingerprints of the leaf certificate, lowercase hex without colons.
    pub fingerprint: Vec<String>,
    /// Base64 SHA-256 hashes of the SubjectPublicKeyInfo.
    pub spki_hash: Vec<String>,
    pub san_email: Option<StringMatcher>,
    pub san_dns: Option<StringMatcher>,
    pub san_uri: Option<StringMatcher>,
}

/// An IP network (a single address is a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (
                a.trim().parse::<IpAddr>().ok()?,
                Some(p.trim().parse::<u8>().ok()?),
            ),
            None => (text.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // IPv4-mapped IPv6 peers (::ffff:a.b.c.d) match IPv4 networks.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains() {
        let net = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("10.2.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.1.9.9".parse().unwrap()));
        let one = Cidr::parse("192.168.1.5").unwrap();
        assert_eq!(one.prefix, 32);
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
        assert!(Cidr::parse("nope").is_none());
    }
}
