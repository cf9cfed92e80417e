//! Routing rules (`routes[].rules`) between their file form and their
//! published form, and the checks that keep them sound: a name, valid
//! conditions and regular expressions, and a target route that exists, is
//! another route, and has no rules of its own (rules never chain).

use std::collections::BTreeMap;

use switchyard_proto::v1 as pb;

use crate::{
    Error, Result,
    declarative::{RuleConditionConfig, RuleConfig},
    objects::{ObjectKind, StoredConfig, StoredObject},
};

/// Response formats a rule may name.
const RESPONSE_FORMATS: [&str; 3] = ["text", "json_object", "json_schema"];

/// Checks one route's rules (at `path`, e.g. `routes[auto]`) apart from
/// their targets, and converts them.
pub(crate) fn to_objects(rules: &[RuleConfig], path: &str) -> Result<Vec<pb::RouteRule>> {
    rules
        .iter()
        .enumerate()
        .map(|(index, rule)| {
            let path = format!("{path}.rules[{index}]");
            if rule.name.trim().is_empty() {
                return Err(Error::invalid(format!("{path}.name"), "must not be empty"));
            }
            if rule.route.trim().is_empty() {
                return Err(Error::invalid(format!("{path}.route"), "must not be empty"));
            }
            let when = &rule.when;
            if let Some(format) = &when.response_format
                && !RESPONSE_FORMATS.contains(&format.as_str())
            {
                return Err(Error::invalid(
                    format!("{path}.when.response_format"),
                    "must be text, json_object or json_schema",
                ));
            }
            if let (Some(min), Some(max)) = (when.min_prompt_tokens, when.max_prompt_tokens)
                && min > max
            {
                return Err(Error::invalid(
                    format!("{path}.when"),
                    "min_prompt_tokens is above max_prompt_tokens",
                ));
            }
            for (field, pattern) in [
                ("system_matches", &when.system_matches),
                ("last_user_matches", &when.last_user_matches),
            ] {
                if let Some(pattern) = pattern {
                    regex::Regex::new(pattern).map_err(|error| {
                        Error::invalid(format!("{path}.when.{field}"), error.to_string())
                    })?;
                }
            }
            Ok(pb::RouteRule {
                name: rule.name.clone(),
                route: rule.route.clone(),
                when: Some(pb::RuleCondition {
                    tools: when.tools,
                    response_format: when.response_format.clone().unwrap_or_default(),
                    min_prompt_tokens: when.min_prompt_tokens.unwrap_or(0),
                    max_prompt_tokens: when.max_prompt_tokens.unwrap_or(0),
                    metadata: when.metadata.clone().into_iter().collect(),
                    system_matches: when.system_matches.clone().unwrap_or_default(),
                    last_user_matches: when.last_user_matches.clone().unwrap_or_default(),
                    tier: when.tier.clone().unwrap_or_default(),
                }),
            })
        })
        .collect()
}

/// Checks every rule's and tier route's target in the whole config: it
/// exists, is another route, and sends nothing on itself (rules never
/// chain; a tier's route has neither rules nor tier routes).
pub(crate) fn check_targets(config: &StoredConfig) -> Result<()> {
    for object in config.objects.values() {
        let StoredObject::Route(route) = object else {
            continue;
        };
        for (index, rule) in route.rules.iter().enumerate() {
            let path = format!("routes[{}].rules[{index}].route", route.name);
            check_target(config, &route.name, &rule.route, path, false)?;
        }
        for (tier, target) in &route.tier_routes {
            let path = format!("routes[{}].by_tier.{tier}", route.name);
            check_target(config, &route.name, target, path, true)?;
        }
    }
    Ok(())
}

/// Checks one target (`target`, at `path`) of route `from`; `by_tier`
/// targets may not have tier routes either.
fn check_target(
    config: &StoredConfig,
    from: &str,
    target: &str,
    path: String,
    by_tier: bool,
) -> Result<()> {
    match config.get(ObjectKind::Route, target) {
        None => Err(Error::invalid(
            path,
            format!("names unknown route `{target}`"),
        )),
        Some(_) if target == from => Err(Error::invalid(path, "names its own route")),
        Some(StoredObject::Route(route)) if !route.rules.is_empty() => Err(Error::invalid(
            path,
            format!("names `{target}`, which has rules of its own"),
        )),
        Some(StoredObject::Route(route)) if by_tier && !route.tier_routes.is_empty() => {
            Err(Error::invalid(
                path,
                format!("names `{target}`, which has tier routes of its own"),
            ))
        }
        Some(_) => Ok(()),
    }
}

/// The file form of published rules.
pub(crate) fn to_configs(rules: &[pb::RouteRule]) -> Vec<RuleConfig> {
    rules
        .iter()
        .map(|rule| {
            let when = rule.when.clone().unwrap_or_default();
            let non_empty = |text: String| (!text.is_empty()).then_some(text);
            RuleConfig {
                name: rule.name.clone(),
                route: rule.route.clone(),
                when: RuleConditionConfig {
                    tools: when.tools,
                    response_format: non_empty(when.response_format),
                    min_prompt_tokens: (when.min_prompt_tokens > 0)
                        .then_some(when.min_prompt_tokens),
                    max_prompt_tokens: (when.max_prompt_tokens > 0)
                        .then_some(when.max_prompt_tokens),
                    metadata: when.metadata.into_iter().collect::<BTreeMap<_, _>>(),
                    system_matches: non_empty(when.system_matches),
                    last_user_matches: non_empty(when.last_user_matches),
                    tier: non_empty(when.tier),
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> RuleConfig {
        serde_yaml::from_str(yaml).expect("YAML")
    }

    fn config_of(objects: Vec<StoredObject>) -> StoredConfig {
        let mut config = StoredConfig::default();
        for object in objects {
            config.insert(object);
        }
        config
    }

    fn route(name: &str, rules: Vec<pb::RouteRule>) -> StoredObject {
        StoredObject::Route(pb::Route {
            name: name.to_owned(),
            rules,
            ..pb::Route::default()
        })
    }

    #[test]
    fn bad_rules_are_refused_naming_the_field() {
        let refused = |yaml: &str| {
            to_objects(&[rule(yaml)], "routes[auto]")
                .expect_err(yaml)
                .to_string()
        };
        assert!(refused("{name: '', when: {}, route: x}").contains("rules[0].name"));
        assert!(
            refused("{name: code, when: {last_user_matches: '(unclosed'}, route: x}")
                .contains("rules[0].when.last_user_matches")
        );
        assert!(
            refused("{name: f, when: {response_format: xml}, route: x}")
                .contains("rules[0].when.response_format")
        );
        assert!(
            refused("{name: n, when: {min_prompt_tokens: 10, max_prompt_tokens: 5}, route: x}")
                .contains("min_prompt_tokens")
        );
        let rules = to_objects(
            &[rule(
                "{name: code, when: {tools: true, metadata: {task: code}}, route: coder}",
            )],
            "routes[auto]",
        )
        .expect("valid");
        assert_eq!(
            to_configs(&rules),
            [rule(
                "{name: code, when: {tools: true, metadata: {task: code}}, route: coder}"
            )]
        );
    }

    #[test]
    fn targets_must_exist_differ_and_have_no_rules() {
        let to = |target: &str| pb::RouteRule {
            name: "r".to_owned(),
            route: target.to_owned(),
            when: None,
        };
        let ok = config_of(vec![
            route("auto", vec![to("coder")]),
            route("coder", Vec::new()),
        ]);
        assert!(check_targets(&ok).is_ok());
        let missing = config_of(vec![route("auto", vec![to("ghost")])]);
        assert!(
            check_targets(&missing)
                .expect_err("unknown")
                .to_string()
                .contains("unknown route `ghost`")
        );
        let own = config_of(vec![route("auto", vec![to("auto")])]);
        assert!(
            check_targets(&own)
                .expect_err("self")
                .to_string()
                .contains("its own route")
        );
        let chained = config_of(vec![
            route("auto", vec![to("middle")]),
            route("middle", vec![to("coder")]),
            route("coder", Vec::new()),
        ]);
        assert!(
            check_targets(&chained)
                .expect_err("chain")
                .to_string()
                .contains("rules of its own")
        );
    }

    #[test]
    fn tier_routes_must_exist_and_send_nothing_on() {
        let tiered = |name: &str, tiers: &[(&str, &str)]| {
            StoredObject::Route(pb::Route {
                name: name.to_owned(),
                tier_routes: tiers
                    .iter()
                    .map(|(tier, to)| ((*tier).to_owned(), (*to).to_owned()))
                    .collect(),
                ..pb::Route::default()
            })
        };
        let ok = config_of(vec![
            tiered("chat", &[("free", "cheap")]),
            tiered("cheap", &[]),
        ]);
        assert!(check_targets(&ok).is_ok());
        let refused = |objects| {
            check_targets(&config_of(objects))
                .expect_err("refused")
                .to_string()
        };
        assert!(refused(vec![tiered("chat", &[("free", "ghost")])]).contains("by_tier.free"));
        assert!(
            refused(vec![
                tiered("chat", &[("free", "cheap")]),
                tiered("cheap", &[("batch", "cheapest")]),
                tiered("cheapest", &[]),
            ])
            .contains("tier routes of its own")
        );
        assert!(
            refused(vec![
                tiered("chat", &[("free", "auto")]),
                route(
                    "auto",
                    vec![pb::RouteRule {
                        name: "r".to_owned(),
                        route: "chat".to_owned(),
                        when: None,
                    }]
                ),
            ])
            .contains("rules of its own")
        );
    }
}
