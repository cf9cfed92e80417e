//! How `switchyard ctl` shows objects: readable tables by default, the
//! config file's YAML or JSON for scripts, and line diffs for `apply`/`diff`.

use std::fmt::Write as _;

use switchyard_control_plane::{StoredObject, to_declarative};
use switchyard_proto::v1 as pb;

/// The `-o` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// The config file's form, as YAML.
    Yaml,
    /// The config file's form, as JSON.
    Json,
}

/// Stored credentials among `objects` (the config file has no form for
/// them), by id, provider, master key and hint; `None` when there are none.
fn credentials(objects: &[StoredObject]) -> Option<serde_json::Value> {
    let credentials: Vec<serde_json::Value> = objects
        .iter()
        .filter_map(|object| match object {
            StoredObject::Credential(credential) => Some(serde_json::json!({
                "id": credential.id,
                "provider": credential.provider,
                "master_key_id": credential.master_key_id,
                "hint": credential.hint,
            })),
            _ => None,
        })
        .collect();
    (!credentials.is_empty()).then(|| serde_json::json!({ "credentials": credentials }))
}

/// Objects in the config file's YAML form (`export` writes this), then any
/// stored credentials.
pub fn yaml(objects: &[StoredObject]) -> String {
    let declarative = to_declarative(objects);
    let mut text = if declarative == switchyard_control_plane::Declarative::default() {
        String::new()
    } else {
        serde_yaml::to_string(&declarative).unwrap_or_default()
    };
    if let Some(credentials) = credentials(objects) {
        text.push_str(&serde_yaml::to_string(&credentials).unwrap_or_default());
    }
    if text.is_empty() {
        text.push_str("{}\n");
    }
    text
}

/// Objects in the config file's form, as pretty JSON (stored credentials
/// under `credentials`).
pub fn json(objects: &[StoredObject]) -> String {
    let mut document = serde_json::to_value(to_declarative(objects)).unwrap_or_default();
    if let (Some(map), Some(serde_json::Value::Object(credentials))) =
        (document.as_object_mut(), credentials(objects))
    {
        map.extend(credentials);
    }
    serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
}

/// Objects with their owner and revision as an aligned table.
pub fn table(objects: &[StoredObject]) -> String {
    let mut rows = vec![[
        "KIND".to_owned(),
        "ID".to_owned(),
        "OWNER".to_owned(),
        "REV".to_owned(),
        "DETAIL".to_owned(),
    ]];
    for object in objects {
        let meta = object.meta().copied().unwrap_or_default();
        let owner = match pb::Owner::try_from(meta.owner) {
            Ok(pb::Owner::File) => "file",
            Ok(pb::Owner::Api) => "api",
            _ => "",
        };
        rows.push([
            object.kind().as_str().to_owned(),
            object.id().to_owned(),
            owner.to_owned(),
            meta.revision.to_string(),
            detail(object),
        ]);
    }
    columns(&rows)
}

/// Aligns rows into columns two spaces apart.
pub fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0_usize; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            if index + 1 == N {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ");
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// A decimal amount of money in nano-units, for tables.
pub fn money(money: Option<&pb::Money>) -> String {
    let Some(money) = money else {
        return "-".to_owned();
    };
    let decimal = switchyard_control_plane::format_price_nanos(money.nanos);
    // At least cents: `50` is `50.00`, `0.5` is `0.50`.
    let decimal = match decimal.split_once('.') {
        None => format!("{decimal}.00"),
        Some((_, fraction)) if fraction.len() == 1 => format!("{decimal}0"),
        Some(_) => decimal,
    };
    format!("{decimal} {}", money.currency)
}

fn scope(scope: Option<&pb::Scope>) -> String {
    use pb::scope::Subject;
    match scope.and_then(|scope| scope.subject.as_ref()) {
        Some(Subject::TeamId(id)) => format!("team:{id}"),
        Some(Subject::UserId(id)) => format!("user:{id}"),
        Some(Subject::KeyId(id)) => format!("key:{id}"),
        None => "-".to_owned(),
    }
}

/// A one-line summary of an object: what a table's DETAIL column shows.
fn detail(object: &StoredObject) -> String {
    match object {
        StoredObject::Provider(provider) => {
            let url = if provider.base_url.is_empty() {
                "default endpoint"
            } else {
                &provider.base_url
            };
            format!("{} {url}", provider.kind)
        }
        StoredObject::Deployment(deployment) => {
            format!("{} at {}", deployment.upstream_model, deployment.provider)
        }
        StoredObject::Route(route) => match &route.strategy {
            Some(pb::route::Strategy::Fallback(fallback)) => {
                format!("fallback: {}", fallback.deployments.join(", "))
            }
            Some(pb::route::Strategy::Tiered(tiered)) => tiered
                .tiers
                .iter()
                .map(|tier| {
                    let kind =
                        pb::TierKind::try_from(tier.kind).map_or("priority", |kind| match kind {
                            pb::TierKind::Weighted => "weighted",
                            pb::TierKind::Latency => "latency",
                            pb::TierKind::Cost => "cost",
                            pb::TierKind::Score => "score",
                            _ => "fallback",
                        });
                    format!("{kind}: {}", tier.deployments.join(", "))
                })
                .collect::<Vec<_>>()
                .join("; then "),
            None => String::new(),
        },
        StoredObject::ApiKey(key) => {
            let mut parts = Vec::new();
            if !key.hint.is_empty() {
                parts.push(key.hint.clone());
            }
            if !key.team_id.is_empty() {
                parts.push(format!("team={}", key.team_id));
            }
            if !key.user_id.is_empty() {
                parts.push(format!("user={}", key.user_id));
            }
            if !key.allowed_models.is_empty() {
                parts.push(format!("models={}", key.allowed_models.join(",")));
            }
            if key.disabled {
                parts.push("REVOKED".to_owned());
            }
            parts.join(" ")
        }
        StoredObject::Team(team) => team.name.clone(),
        StoredObject::User(user) => {
            if user.team_id.is_empty() {
                user.name.clone()
            } else {
                format!("{} team={}", user.name, user.team_id)
                    .trim()
                    .to_owned()
            }
        }
        StoredObject::Budget(budget) => {
            let period = match pb::BudgetPeriod::try_from(budget.period) {
                Ok(pb::BudgetPeriod::Daily) => "daily",
                Ok(pb::BudgetPeriod::Monthly) => "monthly",
                _ => "total",
            };
            format!(
                "{} {} {period}",
                scope(budget.scope.as_ref()),
                money(budget.limit.as_ref())
            )
        }
        StoredObject::Credential(credential) => format!(
            "provider={} master_key={} {}",
            credential.provider, credential.master_key_id, credential.hint
        )
        .trim()
        .to_owned(),
        StoredObject::RateLimit(limit) => format!(
            "{} rpm={} tpm={} concurrency={}",
            scope(limit.scope.as_ref()),
            limit.requests_per_minute,
            limit.tokens_per_minute,
            limit.max_concurrency
        ),
    }
}

/// One object's change as a header and a line diff of its YAML.
pub fn change(change: &pb::ObjectChange) -> String {
    let object = |side: &Option<pb::ConfigObject>| {
        side.clone()
            .and_then(StoredObject::from_proto)
            .map(StoredObject::without_meta)
    };
    let before = object(&change.before);
    let after = object(&change.after);
    let Some(named) = after.as_ref().or(before.as_ref()) else {
        return String::new();
    };
    let (sign, verb) = match (&before, &after) {
        (None, _) => ('+', "create"),
        (Some(_), Some(_)) => ('~', "update"),
        (Some(_), None) => ('-', "delete"),
    };
    let mut text = format!("{sign} {} {} ({verb})\n", named.kind().as_str(), named.id());
    let lines = |object: &Option<StoredObject>| -> Vec<String> {
        object
            .as_ref()
            .map(|object| yaml(std::slice::from_ref(object)))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    for line in line_diff(&lines(&before), &lines(&after)) {
        text.push_str("    ");
        text.push_str(&line);
        text.push('\n');
    }
    text
}

/// A longest-common-subsequence diff of two small texts: unchanged lines
/// start with two spaces, removed ones with `- `, added ones with `+ `.
pub fn line_diff(before: &[String], after: &[String]) -> Vec<String> {
    let (n, m) = (before.len(), after.len());
    let mut common = vec![vec![0_usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if before[i] == after[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut lines = Vec::new();
    while i < n || j < m {
        if i < n && j < m && before[i] == after[j] {
            lines.push(format!("  {}", before[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || common[i + 1][j] >= common[i][j + 1]) {
            // Removals first, as `diff -u` shows them.
            lines.push(format!("- {}", before[i]));
            i += 1;
        } else {
            lines.push(format!("+ {}", after[j]));
            j += 1;
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn diffs_mark_removed_and_added_lines_and_keep_common_ones() {
        let diff = line_diff(&lines("a\nb\nc"), &lines("a\nx\nc\nd"));
        assert_eq!(diff, vec!["  a", "- b", "+ x", "  c", "+ d"]);
        assert!(
            line_diff(&lines("a"), &lines("a"))
                .iter()
                .all(|line| line.starts_with("  "))
        );
    }

    #[test]
    fn money_shows_at_least_cents() {
        let dollars = |nanos| pb::Money {
            nanos,
            currency: "USD".to_owned(),
        };
        assert_eq!(money(Some(&dollars(50_000_000_000))), "50.00 USD");
        assert_eq!(money(Some(&dollars(150_000_000))), "0.15 USD");
        assert_eq!(money(Some(&dollars(1))), "0.000000001 USD");
        assert_eq!(money(None), "-");
    }

    #[test]
    fn tables_align_columns() {
        let text = columns(&[
            ["A".to_owned(), "B".to_owned()],
            ["long".to_owned(), "x".to_owned()],
        ]);
        assert_eq!(text, "A     B\nlong  x\n");
    }
}
