//! What each deployment takes from its provider when a snapshot is
//! published. Routers are never sent providers (they hold endpoints and
//! credential references), so what they decide by is copied onto the
//! deployments:
//! - its capabilities: as declared, narrowed to what its provider kind can
//!   express (see [`switchyard_common::features`]). A deployment that
//!   declares none is assumed able to do everything else, so the router
//!   skips it only for the features its kind cannot express, instead of
//!   calling it to be refused;
//! - its provider account's capacity, which the router enforces across
//!   the provider's deployments.

use std::collections::HashMap;

use switchyard_common::features::{Feature, expressed_by};
use switchyard_proto::v1 as pb;

/// Gives every deployment of `snapshot` what it takes from its provider.
pub(crate) fn from_providers(snapshot: &mut pb::Snapshot) {
    let providers: HashMap<&str, &pb::Provider> = snapshot
        .providers
        .iter()
        .map(|provider| (provider.name.as_str(), provider))
        .collect();
    for deployment in &mut snapshot.deployments {
        let Some(provider) = providers.get(deployment.provider.as_str()) else {
            continue;
        };
        deployment.provider_capacity = provider.capacity;
        narrow_capabilities(deployment, &provider.kind);
    }
}

/// Narrows `deployment`'s capabilities to what a provider of `kind` can
/// express.
fn narrow_capabilities(deployment: &mut pb::Deployment, kind: &str) {
    let expresses = |feature| expressed_by(kind, feature);
    if Feature::ALL.into_iter().all(expresses) {
        return;
    }
    let capabilities = deployment.capabilities.get_or_insert(pb::Capabilities {
        tools: true,
        vision: true,
        json_schema: true,
        logprobs: true,
        multiple_choices: true,
    });
    capabilities.logprobs &= expresses(Feature::Logprobs);
    capabilities.multiple_choices &= expresses(Feature::MultipleChoices);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(kind: &str, capabilities: Option<pb::Capabilities>) -> pb::Snapshot {
        pb::Snapshot {
            providers: vec![pb::Provider {
                name: "p".to_owned(),
                kind: kind.to_owned(),
                ..pb::Provider::default()
            }],
            deployments: vec![pb::Deployment {
                id: "d".to_owned(),
                provider: "p".to_owned(),
                capabilities,
                ..pb::Deployment::default()
            }],
            ..pb::Snapshot::default()
        }
    }

    #[test]
    fn an_undeclared_deployment_loses_only_what_its_kind_cannot_express() {
        let mut anthropic = snapshot("anthropic", None);
        from_providers(&mut anthropic);
        let resolved = anthropic.deployments[0].capabilities.expect("resolved");
        assert!(resolved.tools && resolved.vision && resolved.json_schema);
        assert!(!resolved.logprobs && !resolved.multiple_choices);

        let mut openai = snapshot("openai", None);
        from_providers(&mut openai);
        assert_eq!(openai.deployments[0].capabilities, None, "able to do all");
    }

    #[test]
    fn a_deployment_carries_its_providers_capacity() {
        let mut limited = snapshot("openai", None);
        let account = pb::Capacity {
            requests_per_minute: 500,
            ..pb::Capacity::default()
        };
        limited.providers[0].capacity = Some(account);
        from_providers(&mut limited);
        assert_eq!(limited.deployments[0].provider_capacity, Some(account));
    }

    #[test]
    fn a_declaration_is_kept_but_never_beyond_the_kind() {
        let declared = pb::Capabilities {
            tools: true,
            logprobs: true,
            multiple_choices: true,
            ..pb::Capabilities::default()
        };
        let mut mistral = snapshot("mistral", Some(declared));
        from_providers(&mut mistral);
        let resolved = mistral.deployments[0].capabilities.expect("declared");
        assert!(resolved.tools && !resolved.vision && resolved.multiple_choices);
        assert!(!resolved.logprobs, "Mistral cannot express logprobs");
    }
}
