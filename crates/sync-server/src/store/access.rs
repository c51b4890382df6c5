//! The access rules both stores apply, each over its own SQL: the caller's
//! role from their [`Access`] and member row, the role a call needs, and who
//! may change a workspace's members. A store reads the rows these need
//! inside its transaction and calls them; it decides nothing itself.

use super::{Access, StoreError};
use sync_core::Role;

/// The user whose member row decides the role; none when the access carries
/// the role itself, so a store need not read the row.
pub(crate) fn member_user(access: &Access) -> Option<&str> {
    match access {
        Access::Member { user_id } => Some(user_id.as_str()),
        Access::Claimed { .. } | Access::Admin => None,
    }
}

/// The caller's role: the claims' role, owner for the operator, else the
/// role stored in their member row (`member_role`; none: not a member).
pub(crate) fn role_from(access: &Access, member_role: Option<&str>) -> Result<Role, StoreError> {
    match access {
        Access::Admin => Ok(Role::Owner),
        Access::Claimed { role, .. } => Ok(*role),
        Access::Member { .. } => member_role
            .and_then(Role::parse)
            .ok_or(StoreError::Forbidden("not a member of this workspace")),
    }
}

/// `role` when it is at least `needed` (viewer < editor < owner); else
/// `Forbidden` saying what was missing.
pub(crate) fn require_role(role: Role, needed: Role) -> Result<Role, StoreError> {
    if role < needed {
        return Err(StoreError::Forbidden(match needed {
            Role::Owner => "only owners may do this",
            _ => "viewers may not push",
        }));
    }
    Ok(role)
}

/// Whether a caller with role `caller` may give a member `new_role` (none:
/// remove them), when the workspace has `other_owners` owners besides that
/// member. Only owners change members, and a change may not leave the
/// workspace without an owner.
pub(crate) fn check_member_change(
    caller: Role,
    new_role: Option<Role>,
    other_owners: u64,
) -> Result<(), StoreError> {
    require_role(caller, Role::Owner)?;
    if new_role != Some(Role::Owner) && other_owners == 0 {
        return Err(StoreError::LastOwner);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> Access {
        Access::Member {
            user_id: "u".to_owned(),
        }
    }

    #[test]
    fn a_member_without_a_row_is_forbidden() {
        assert!(matches!(
            role_from(&member(), None),
            Err(StoreError::Forbidden(_))
        ));
        assert!(matches!(
            role_from(&member(), Some("admin")),
            Err(StoreError::Forbidden(_))
        ));
        assert_eq!(
            role_from(&member(), Some("editor")).ok(),
            Some(Role::Editor)
        );
    }

    #[test]
    fn claims_and_the_operator_carry_their_role() {
        let claimed = Access::Claimed {
            user_id: "u".to_owned(),
            role: Role::Viewer,
        };
        assert_eq!(role_from(&claimed, Some("owner")).ok(), Some(Role::Viewer));
        assert_eq!(role_from(&Access::Admin, None).ok(), Some(Role::Owner));
        assert_eq!(member_user(&claimed), None);
        assert_eq!(member_user(&member()), Some("u"));
    }

    #[test]
    fn viewers_may_not_push() {
        let refused = require_role(Role::Viewer, Role::Editor);
        assert!(matches!(
            refused,
            Err(StoreError::Forbidden("viewers may not push"))
        ));
        assert_eq!(
            require_role(Role::Editor, Role::Editor).ok(),
            Some(Role::Editor)
        );
    }

    #[test]
    fn only_owners_change_members() {
        let refused = check_member_change(Role::Editor, Some(Role::Viewer), 3);
        assert!(matches!(
            refused,
            Err(StoreError::Forbidden("only owners may do this"))
        ));
        assert!(check_member_change(Role::Owner, Some(Role::Viewer), 1).is_ok());
    }

    #[test]
    fn the_last_owner_may_not_be_demoted_or_removed() {
        assert!(matches!(
            check_member_change(Role::Owner, Some(Role::Editor), 0),
            Err(StoreError::LastOwner)
        ));
        assert!(matches!(
            check_member_change(Role::Owner, None, 0),
            Err(StoreError::LastOwner)
        ));
        assert!(check_member_change(Role::Owner, Some(Role::Owner), 0).is_ok());
    }
}
