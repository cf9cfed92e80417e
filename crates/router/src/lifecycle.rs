//! Model lifecycle at the router: a deployment marked deprecated, or with
//! a sunset date, still serves until its sunset, and its answers say so
//! (`Deprecation`, RFC 9745, and `Sunset`, RFC 8594). Once the control plane
//! has shifted it (at the start of its sunset date, UTC, it publishes the
//! shift in the snapshot), a deployment is replaced by its successor in
//! every plan, and the decision record says which was shifted. Routers
//! never compare the dates themselves: every replica shifts at the same
//! snapshot version.

use switchyard_common::calendar::start_of_date;
use switchyard_proto::v1::Deployment;

/// When `deployment` is deprecated (marked so, or given a sunset date):
/// its sunset in Unix seconds, if it has one.
pub fn deprecation(deployment: &Deployment) -> Option<Option<u64>> {
    let lifecycle = deployment.lifecycle.as_ref()?;
    let sunset = start_of_date(&lifecycle.sunset_date);
    (lifecycle.deprecated || sunset.is_some()).then_some(sunset)
}

/// The successor that replaces `deployment`, when the control plane has
/// shifted its traffic there.
pub fn shifted_to(deployment: &Deployment) -> Option<&str> {
    let lifecycle = deployment.lifecycle.as_ref()?;
    (lifecycle.shifted_at_ms > 0 && !lifecycle.successor.is_empty())
        .then_some(lifecycle.successor.as_str())
}

#[cfg(test)]
mod tests {

    use switchyard_proto::v1::Lifecycle;

    use super::*;

    #[test]
    fn a_deployment_is_replaced_once_the_control_plane_shifted_it() {
        let mut deployment = Deployment {
            lifecycle: Some(Lifecycle {
                deprecated: true,
                sunset_date: "2027-01-01".to_owned(),
                successor: "next".to_owned(),
                shifted_at_ms: 0,
            }),
            ..Deployment::default()
        };
        assert_eq!(deprecation(&deployment), Some(Some(20_819 * 86_400)));
        // Past its date or not, it serves until the shift is published.
        assert_eq!(shifted_to(&deployment), None);
        if let Some(lifecycle) = deployment.lifecycle.as_mut() {
            lifecycle.shifted_at_ms = 1_798_761_600_000;
        }
        assert_eq!(shifted_to(&deployment), Some("next"));
        assert_eq!(deprecation(&Deployment::default()), None);
    }
}
