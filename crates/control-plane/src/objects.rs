//! The stored objects: one proto message per object, keyed by kind and id,
//! each with an owner and a revision.
//!
//! Objects are stored as their protobuf encoding (with `meta` cleared), so a
//! field added to the contract is stored without a schema change, and two
//! objects are the same object exactly when their encodings are equal.

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use prost::Message;
use switchyard_proto::v1 as pb;

use crate::{Error, Result};

/// The kinds of stored object, named as in the `config_objects.kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    /// `providers[]`.
    Provider,
    /// `deployments[]`.
    Deployment,
    /// `routes[]`.
    Route,
    /// `keys[]`.
    ApiKey,
    /// `teams[]`.
    Team,
    /// `users[]`.
    User,
    /// `budgets[]`.
    Budget,
    /// `rate_limits[]`.
    RateLimit,
    /// A stored provider credential (API only, encrypted).
    Credential,
}

impl ObjectKind {
    /// The name stored in the `kind` column and used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Provider => "provider",
            Self::Deployment => "deployment",
            Self::Route => "route",
            Self::ApiKey => "key",
            Self::Team => "team",
            Self::User => "user",
            Self::Budget => "budget",
            Self::RateLimit => "rate_limit",
            Self::Credential => "credential",
        }
    }

    /// Parses a stored `kind` column.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// Who may change an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectOwner {
    /// Declared in the config file.
    File,
    /// Created through the admin API.
    Api,
}

impl ObjectOwner {
    /// The name stored in the `owner` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Api => "api",
        }
    }

    /// Parses a stored `owner` column.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "file" => Some(Self::File),
            "api" => Some(Self::Api),
            _ => None,
        }
    }

    /// The owner on the wire.
    pub fn to_proto(self) -> pb::Owner {
        match self {
            Self::File => pb::Owner::File,
            Self::Api => pb::Owner::Api,
        }
    }
}

/// One configuration object.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "objects live one per map entry, read far more than moved; boxing the large ones would add an allocation per object for no measured gain (the size gap moves as the messages grow)"
)]
pub enum StoredObject {
    /// A provider account.
    Provider(pb::Provider),
    /// A model at a provider.
    Deployment(pb::Deployment),
    /// What clients name in `model`.
    Route(pb::Route),
    /// A client API key (hash only).
    ApiKey(pb::ApiKey),
    /// A team.
    Team(pb::Team),
    /// A user.
    User(pb::User),
    /// A spending limit.
    Budget(pb::Budget),
    /// A rate limit.
    RateLimit(pb::RateLimit),
    /// A stored provider credential, encrypted.
    Credential(pb::Credential),
}

impl StoredObject {
    /// The object's kind.
    pub fn kind(&self) -> ObjectKind {
        match self {
            Self::Provider(_) => ObjectKind::Provider,
            Self::Deployment(_) => ObjectKind::Deployment,
            Self::Route(_) => ObjectKind::Route,
            Self::ApiKey(_) => ObjectKind::ApiKey,
            Self::Team(_) => ObjectKind::Team,
            Self::User(_) => ObjectKind::User,
            Self::Budget(_) => ObjectKind::Budget,
            Self::RateLimit(_) => ObjectKind::RateLimit,
            Self::Credential(_) => ObjectKind::Credential,
        }
    }

    /// The object's id (a provider's or route's name).
    pub fn id(&self) -> &str {
        match self {
            Self::Provider(object) => &object.name,
            Self::Deployment(object) => &object.id,
            Self::Route(object) => &object.name,
            Self::ApiKey(object) => &object.id,
            Self::Team(object) => &object.id,
            Self::User(object) => &object.id,
            Self::Budget(object) => &object.id,
            Self::RateLimit(object) => &object.id,
            Self::Credential(object) => &object.id,
        }
    }

    /// The object's bookkeeping, when set.
    pub fn meta(&self) -> Option<&pb::ObjectMeta> {
        match self {
            Self::Provider(object) => object.meta.as_ref(),
            Self::Deployment(object) => object.meta.as_ref(),
            Self::Route(object) => object.meta.as_ref(),
            Self::ApiKey(object) => object.meta.as_ref(),
            Self::Team(object) => object.meta.as_ref(),
            Self::User(object) => object.meta.as_ref(),
            Self::Budget(object) => object.meta.as_ref(),
            Self::RateLimit(object) => object.meta.as_ref(),
            Self::Credential(object) => object.meta.as_ref(),
        }
    }

    /// The revision in the object's bookkeeping; 0 when unset.
    pub fn revision(&self) -> u64 {
        self.meta().map_or(0, |meta| meta.revision)
    }

    /// Sets the revision in the object's bookkeeping.
    pub fn set_revision(&mut self, revision: u64) {
        let mut meta = self.meta().copied().unwrap_or_default();
        meta.revision = revision;
        self.set_meta(Some(meta));
    }

    /// Returns the object with its bookkeeping cleared.
    pub fn without_meta(mut self) -> Self {
        self.set_meta(None);
        self
    }

    /// Sets the object's bookkeeping.
    pub(crate) fn set_meta(&mut self, meta: Option<pb::ObjectMeta>) {
        match self {
            Self::Provider(object) => object.meta = meta,
            Self::Deployment(object) => object.meta = meta,
            Self::Route(object) => object.meta = meta,
            Self::ApiKey(object) => object.meta = meta,
            Self::Team(object) => object.meta = meta,
            Self::User(object) => object.meta = meta,
            Self::Budget(object) => object.meta = meta,
            Self::RateLimit(object) => object.meta = meta,
            Self::Credential(object) => object.meta = meta,
        }
    }

    /// Returns the stored body: base64 of the protobuf encoding, meta cleared.
    pub fn encode_body(&self) -> String {
        let mut object = self.clone();
        object.set_meta(None);
        let bytes = match &object {
            Self::Provider(object) => object.encode_to_vec(),
            Self::Deployment(object) => object.encode_to_vec(),
            Self::Route(object) => object.encode_to_vec(),
            Self::ApiKey(object) => object.encode_to_vec(),
            Self::Team(object) => object.encode_to_vec(),
            Self::User(object) => object.encode_to_vec(),
            Self::Budget(object) => object.encode_to_vec(),
            Self::RateLimit(object) => object.encode_to_vec(),
            Self::Credential(object) => object.encode_to_vec(),
        };
        STANDARD.encode(bytes)
    }

    /// Decodes a stored body of `kind`.
    pub fn decode_body(kind: ObjectKind, id: &str, body: &str) -> Result<Self> {
        let corrupt = |reason: String| Error::Corrupt {
            path: format!("config_objects[{}/{id}].body", kind.as_str()),
            reason,
        };
        let bytes = STANDARD
            .decode(body)
            .map_err(|error| corrupt(error.to_string()))?;
        let bytes = bytes.as_slice();
        let decoded = match kind {
            ObjectKind::Provider => pb::Provider::decode(bytes).map(Self::Provider),
            ObjectKind::Deployment => pb::Deployment::decode(bytes).map(Self::Deployment),
            ObjectKind::Route => pb::Route::decode(bytes).map(Self::Route),
            ObjectKind::ApiKey => pb::ApiKey::decode(bytes).map(Self::ApiKey),
            ObjectKind::Team => pb::Team::decode(bytes).map(Self::Team),
            ObjectKind::User => pb::User::decode(bytes).map(Self::User),
            ObjectKind::Budget => pb::Budget::decode(bytes).map(Self::Budget),
            ObjectKind::RateLimit => pb::RateLimit::decode(bytes).map(Self::RateLimit),
            ObjectKind::Credential => pb::Credential::decode(bytes).map(Self::Credential),
        };
        let object = decoded.map_err(|error| corrupt(error.to_string()))?;
        if object.id() != id {
            return Err(corrupt(format!("holds the object `{}`", object.id())));
        }
        Ok(object)
    }
}

impl ObjectKind {
    /// The kind a wire `ObjectKind` names; `None` for unspecified.
    pub fn from_proto(kind: pb::ObjectKind) -> Option<Self> {
        Some(match kind {
            pb::ObjectKind::Unspecified => return None,
            pb::ObjectKind::Provider => Self::Provider,
            pb::ObjectKind::Deployment => Self::Deployment,
            pb::ObjectKind::Route => Self::Route,
            pb::ObjectKind::Key => Self::ApiKey,
            pb::ObjectKind::Team => Self::Team,
            pb::ObjectKind::User => Self::User,
            pb::ObjectKind::Budget => Self::Budget,
            pb::ObjectKind::RateLimit => Self::RateLimit,
            pb::ObjectKind::Credential => Self::Credential,
        })
    }

    /// The kind on the wire.
    pub fn to_proto(self) -> pb::ObjectKind {
        match self {
            Self::Provider => pb::ObjectKind::Provider,
            Self::Deployment => pb::ObjectKind::Deployment,
            Self::Route => pb::ObjectKind::Route,
            Self::ApiKey => pb::ObjectKind::Key,
            Self::Team => pb::ObjectKind::Team,
            Self::User => pb::ObjectKind::User,
            Self::Budget => pb::ObjectKind::Budget,
            Self::RateLimit => pb::ObjectKind::RateLimit,
            Self::Credential => pb::ObjectKind::Credential,
        }
    }

    /// Every kind, in the store's order.
    pub const ALL: [Self; 9] = [
        Self::Provider,
        Self::Deployment,
        Self::Route,
        Self::ApiKey,
        Self::Team,
        Self::User,
        Self::Budget,
        Self::RateLimit,
        Self::Credential,
    ];
}

impl StoredObject {
    /// The object a wire `ConfigObject` holds; `None` when it holds none.
    pub fn from_proto(object: pb::ConfigObject) -> Option<Self> {
        use pb::config_object::Object;
        Some(match object.object? {
            Object::Provider(object) => Self::Provider(object),
            Object::Deployment(object) => Self::Deployment(object),
            Object::Route(object) => Self::Route(object),
            Object::Key(object) => Self::ApiKey(object),
            Object::Team(object) => Self::Team(object),
            Object::User(object) => Self::User(object),
            Object::Budget(object) => Self::Budget(object),
            Object::RateLimit(object) => Self::RateLimit(object),
            Object::Credential(object) => Self::Credential(object),
        })
    }

    /// The object as a wire `ConfigObject`.
    pub fn into_proto(self) -> pb::ConfigObject {
        use pb::config_object::Object;
        let object = match self {
            Self::Provider(object) => Object::Provider(object),
            Self::Deployment(object) => Object::Deployment(object),
            Self::Route(object) => Object::Route(object),
            Self::ApiKey(object) => Object::Key(object),
            Self::Team(object) => Object::Team(object),
            Self::User(object) => Object::User(object),
            Self::Budget(object) => Object::Budget(object),
            Self::RateLimit(object) => Object::RateLimit(object),
            Self::Credential(object) => Object::Credential(object),
        };
        pb::ConfigObject {
            object: Some(object),
        }
    }
}

/// A stored object with its bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    /// The object, `meta` unset.
    pub object: StoredObject,
    /// Who may change it.
    pub owner: ObjectOwner,
    /// Starts at 1; increases with every change.
    pub revision: u64,
}

/// A set of objects keyed by kind and id: what a config file declares, or
/// what the database holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredConfig {
    /// Every object, in (kind, id) order.
    pub objects: BTreeMap<(ObjectKind, String), StoredObject>,
}

impl StoredConfig {
    /// Adds an object; returns `false` when one of its kind and id exists.
    pub fn insert(&mut self, object: StoredObject) -> bool {
        let key = (object.kind(), object.id().to_owned());
        if self.objects.contains_key(&key) {
            return false;
        }
        self.objects.insert(key, object);
        true
    }

    /// Returns the object of `kind` and `id`.
    pub fn get(&self, kind: ObjectKind, id: &str) -> Option<&StoredObject> {
        self.objects.get(&(kind, id.to_owned()))
    }

    /// Returns whether an object of `kind` and `id` exists.
    pub fn contains(&self, kind: ObjectKind, id: &str) -> bool {
        self.objects.contains_key(&(kind, id.to_owned()))
    }
}

impl StoredEntry {
    /// The object with its owner and revision in its `meta`, as the API and
    /// snapshots show it.
    pub fn object_with_meta(&self) -> StoredObject {
        let mut object = self.object.clone();
        object.set_meta(Some(pb::ObjectMeta {
            owner: self.owner.to_proto() as i32,
            revision: self.revision,
        }));
        object
    }
}

/// Builds the full (unfiltered) snapshot of `entries` at `version`.
pub fn to_snapshot<'a>(
    entries: impl IntoIterator<Item = &'a StoredEntry>,
    version: u64,
) -> pb::Snapshot {
    let mut snapshot = pb::Snapshot {
        version,
        ..pb::Snapshot::default()
    };
    for entry in entries {
        match entry.object_with_meta() {
            StoredObject::Provider(object) => snapshot.providers.push(object),
            StoredObject::Deployment(object) => snapshot.deployments.push(object),
            StoredObject::Route(object) => snapshot.routes.push(object),
            StoredObject::ApiKey(object) => snapshot.api_keys.push(object),
            StoredObject::Team(object) => snapshot.teams.push(object),
            StoredObject::User(object) => snapshot.users.push(object),
            StoredObject::Budget(object) => snapshot.budgets.push(object),
            StoredObject::RateLimit(object) => snapshot.rate_limits.push(object),
            StoredObject::Credential(object) => snapshot.credentials.push(object),
        }
    }
    snapshot
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_without_meta() {
        let route = StoredObject::Route(pb::Route {
            name: "demo".to_owned(),
            strategy: Some(pb::route::Strategy::Fallback(pb::FallbackStrategy {
                deployments: vec!["a".to_owned(), "b".to_owned()],
            })),
            meta: Some(pb::ObjectMeta {
                owner: pb::Owner::Api as i32,
                revision: 4,
            }),
            ..pb::Route::default()
        });
        let body = route.encode_body();
        let decoded = StoredObject::decode_body(ObjectKind::Route, "demo", &body).expect("decodes");
        let StoredObject::Route(decoded) = decoded else {
            panic!("a route");
        };
        assert_eq!(decoded.meta, None);
        assert_eq!(decoded.name, "demo");
        assert!(StoredObject::decode_body(ObjectKind::Route, "other", &body).is_err());
        assert!(StoredObject::decode_body(ObjectKind::Route, "demo", "!!").is_err());
    }

    #[test]
    fn kinds_and_owners_parse_their_names() {
        for kind in [
            ObjectKind::Provider,
            ObjectKind::ApiKey,
            ObjectKind::RateLimit,
        ] {
            assert_eq!(ObjectKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ObjectOwner::parse("api"), Some(ObjectOwner::Api));
        assert_eq!(ObjectOwner::parse("nobody"), None);
    }
}
