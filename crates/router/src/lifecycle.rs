//! Model lifecycle at the router: a deployment marked deprecated, or with
//! a sunset date, still serves until its sunset, and its answers say so
//! (`Deprecation`, RFC 9745, and `Sunset`, RFC 8594); from the start of its
//! sunset date (UTC), a deployment with a successor is replaced by it in
//! every plan, and the decision record says which was shifted.

use std::time::{SystemTime, UNIX_EPOCH};

use switchyard_common::calendar::start_of_date;
use switchyard_proto::v1::Deployment;

/// When `deployment` is deprecated (marked so, or given a sunset date):
/// its sunset in Unix seconds, if it has one.
pub fn deprecation(deployment: &Deployment) -> Option<Option<u64>> {
    let lifecycle = deployment.lifecycle.as_ref()?;
    let sunset = start_of_date(&lifecycle.sunset_date);
    (lifecycle.deprecated || sunset.is_some()).then_some(sunset)
}

/// The successor that replaces `deployment` now, when its sunset has come
/// and it names one.
pub fn successor_now(deployment: &Deployment, now: SystemTime) -> Option<&str> {
    let lifecycle = deployment.lifecycle.as_ref()?;
    if lifecycle.successor.is_empty() {
        return None;
    }
    let sunset = start_of_date(&lifecycle.sunset_date)?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    (now >= sunset).then_some(lifecycle.successor.as_str())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchyard_proto::v1::Lifecycle;

    use super::*;

    #[test]
    fn a_deployment_is_shifted_from_the_start_of_its_sunset_date() {
        let deployment = Deployment {
            lifecycle: Some(Lifecycle {
                deprecated: true,
                sunset_date: "2027-01-01".to_owned(),
                successor: "next".to_owned(),
            }),
            ..Deployment::default()
        };
        let sunset = UNIX_EPOCH + Duration::from_secs(20_819 * 86_400);
        assert_eq!(deprecation(&deployment), Some(Some(20_819 * 86_400)));
        assert_eq!(
            successor_now(&deployment, sunset - Duration::from_secs(1)),
            None
        );
        assert_eq!(successor_now(&deployment, sunset), Some("next"));
        assert_eq!(deprecation(&Deployment::default()), None);
    }
}
