//! Pomerium's route shorthands (`allowed_users`, `allow_public_unauthenticated_access`, ...)
//! expressed as one PPL allow rule, in Pomerium's order.

use super::ast::{Action, Criterion, ListMatcher, ListOp, Rule, StringMatcher, StringOp};

#[derive(Clone, Debug, Default)]
pub struct Shorthands {
    pub allow_public_unauthenticated_access: bool,
    pub cors_allow_preflight: bool,
    pub allow_any_authenticated_user: bool,
    pub allowed_domains: Vec<String>,
    /// Claim name → accepted values, sorted by claim name (as Pomerium does).
    pub allowed_idp_claims: Vec<(String, Vec<serde_json::Value>)>,
    pub allowed_users: Vec<String>,
}

impl Shorthands {
    /// The allow rule the shorthands stand for, or None when no shorthand is set.
    pub fn to_rule(&self) -> Option<Rule> {
        let is = |v: &str| StringMatcher(vec![StringOp::Is(v.to_string())]);
        let mut or = Vec::new();
        if self.allow_public_unauthenticated_access {
            or.push(Criterion::Accept);
        }
        if self.cors_allow_preflight {
            or.push(Criterion::CorsPreflight);
        }
        if self.allow_any_authenticated_user {
            or.push(Criterion::AuthenticatedUser);
        }
        or.extend(
            self.allowed_domains
                .iter()
                .map(|d| Criterion::Domain(is(d))),
        );
        for (claim, values) in &self.allowed_idp_claims {
            or.extend(values.iter().map(|v| Criterion::Claim {
                name: claim.clone(),
                matcher: ListMatcher(vec![ListOp::Has(v.clone())]),
            }));
        }
        // Pomerium matches allowed_users against both the user id and the email.
        for user in &self.allowed_users {
            or.push(Criterion::User(is(user)));
            or.push(Criterion::Email(is(user)));
        }
        (!or.is_empty()).then(|| Rule {
            action: Action::Allow,
            and: Vec::new(),
            or,
            not: Vec::new(),
            nor: Vec::new(),
        })
    }
}
