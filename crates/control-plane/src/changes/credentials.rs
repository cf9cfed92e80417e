//! Checking stored credentials and the provider secrets that name them.
//! Credentials have no form in the config file (their values are never
//! written out), so the file's validation does not see them; this does.

use std::collections::BTreeMap;

use switchyard_proto::v1 as pb;

use crate::{
    Error, Result,
    objects::{ObjectKind, StoredConfig, StoredObject},
};

/// Refuses a credential without an id, a value or a known provider, and a
/// provider secret naming a credential that is missing or another provider's.
pub(super) fn check(
    result: &BTreeMap<(ObjectKind, String), &StoredObject>,
    normalized: &StoredConfig,
) -> Result<()> {
    let credentials: BTreeMap<&str, &pb::Credential> = result
        .values()
        .filter_map(|object| match object {
            StoredObject::Credential(credential) => Some((credential.id.as_str(), credential)),
            _ => None,
        })
        .collect();
    for (id, credential) in &credentials {
        let path = format!("credentials[{id}]");
        if id.trim().is_empty() {
            return Err(Error::invalid(path, "needs an id"));
        }
        if credential.sealed.is_none() || credential.master_key_id.is_empty() {
            return Err(Error::invalid(path, "holds no value"));
        }
        if !normalized.contains(ObjectKind::Provider, &credential.provider) {
            return Err(Error::invalid(
                format!("{path}.provider"),
                format!("names unknown provider `{}`", credential.provider),
            ));
        }
    }
    for object in normalized.objects.values() {
        let StoredObject::Provider(provider) = object else {
            continue;
        };
        let references = provider
            .api_key
            .iter()
            .map(|reference| ("api_key".to_owned(), reference))
            .chain(
                provider
                    .api_keys
                    .iter()
                    .map(|(id, reference)| (format!("api_keys.{id}"), reference)),
            )
            .chain(
                provider
                    .secrets
                    .iter()
                    .map(|(name, reference)| (format!("secrets.{name}"), reference)),
            );
        for (field, reference) in references {
            let Some(pb::secret_ref::Source::Credential(id)) = &reference.source else {
                continue;
            };
            let path = format!("providers[{}].{field}", provider.name);
            match credentials.get(id.as_str()) {
                None => {
                    return Err(Error::invalid(
                        path,
                        format!("names unknown credential `{id}`"),
                    ));
                }
                Some(credential) if credential.provider != provider.name => {
                    return Err(Error::invalid(
                        path,
                        format!(
                            "names credential `{id}`, which belongs to provider `{}`",
                            credential.provider
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}
