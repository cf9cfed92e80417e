//! Reading and writing `lifecycle_shifts`: the sunset shifts the control
//! plane made (see [`crate::lifecycle`]).

use std::collections::BTreeMap;

use sqlx::{AnyConnection, Row};

use crate::{Result, lifecycle::Shift};

/// Every shift made, by deployment id.
pub(crate) type Shifts = BTreeMap<String, Shift>;

/// Reads every shift made.
pub(crate) async fn read(connection: &mut AnyConnection) -> Result<Shifts> {
    let rows = sqlx::query("SELECT deployment_id, successor, shifted_at_ms FROM lifecycle_shifts")
        .fetch_all(&mut *connection)
        .await?;
    rows.iter()
        .map(|row| {
            let deployment: String = row.try_get("deployment_id")?;
            let shift = Shift {
                deployment: deployment.clone(),
                successor: row.try_get("successor")?,
                at_ms: row.try_get("shifted_at_ms")?,
                routes: Vec::new(),
            };
            Ok((deployment, shift))
        })
        .collect()
}

/// Records `shift`, replacing an earlier one of the same deployment (whose
/// successor has since changed).
pub(crate) async fn write(connection: &mut AnyConnection, shift: &Shift) -> Result<()> {
    sqlx::query("DELETE FROM lifecycle_shifts WHERE deployment_id = $1")
        .bind(&shift.deployment)
        .execute(&mut *connection)
        .await?;
    sqlx::query(
        "INSERT INTO lifecycle_shifts (deployment_id, successor, shifted_at_ms) VALUES ($1, $2, $3)",
    )
    .bind(&shift.deployment)
    .bind(&shift.successor)
    .bind(shift.at_ms)
    .execute(&mut *connection)
    .await?;
    Ok(())
}
