//! Roles and the permission named after every admin action.
//!
//! Each admin API operation is an [`Action`] whose name follows the reference
//! product's actions (CreateNetwork, ListUsers, BatchSuspendUser, …); the same name
//! appears in the OpenAPI document as the operationId and in the audit log as the
//! event name. [`allows`] is the whole role matrix; network-scoped actions are further
//! limited to the networks an `admin` or `compliance` account is assigned.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including admin accounts, backups and every network.
    Owner,
    /// Everything inside the networks assigned to the account.
    Admin,
    /// Read-only access to every network and to the audit log.
    Auditor,
    /// Data retention of the networks assigned to the account.
    Compliance,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::Compliance => "compliance",
        }
    }

    /// Roles whose reach is limited to assigned networks.
    pub fn is_network_scoped(self) -> bool {
        matches!(self, Role::Admin | Role::Compliance)
    }
}

macro_rules! actions {
    ($($name:ident: $read_only:expr, $scoped:expr;)*) => {
        /// Every admin API operation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Action { $($name,)* }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$name,)*];

            /// The operation's name (audit event name, OpenAPI operationId).
            pub fn name(self) -> &'static str {
                match self { $(Action::$name => stringify!($name),)* }
            }

            /// True if the operation changes nothing.
            pub fn read_only(self) -> bool {
                match self { $(Action::$name => $read_only,)* }
            }

            /// True if the operation acts inside one network (`{network_id}` in its path).
            pub fn network_scoped(self) -> bool {
                match self { $(Action::$name => $scoped,)* }
            }

            pub fn from_name(name: &str) -> Option<Action> {
                Action::ALL.iter().copied().find(|a| a.name() == name)
            }
        }
    };
}

actions! {
    CreateAdminSession: false, false;
    GetAdminSession: true, false;
    DeleteAdminSession: false, false;
    ChangeAdminPassword: false, false;

    ListNetworks: true, false;
    CreateNetwork: false, false;
    GetNetwork: true, true;
    UpdateNetwork: false, true;
    DeleteNetwork: false, true;
    GetNetworkSettings: true, true;
    UpdateNetworkSettings: false, true;
    GetDataRetention: true, true;
    UpdateDataRetention: false, true;
    PutComplianceDevice: false, true;
    ListTagsForResource: true, true;
    TagResource: false, true;
    UntagResource: false, true;
    GetOidcInfo: true, true;
    RegisterOidcConfig: false, true;
    RegisterOidcConfigTest: true, true;

    ListSecurityGroups: true, true;
    CreateSecurityGroup: false, true;
    GetSecurityGroup: true, true;
    UpdateSecurityGroup: false, true;
    DeleteSecurityGroup: false, true;
    ListSecurityGroupUsers: true, true;

    ListUsers: true, true;
    GetUsersCount: true, true;
    CreateUser: false, true;
    GetUser: true, true;
    UpdateUser: false, true;
    DeleteUser: false, true;
    SuspendUser: false, true;
    UnsuspendUser: false, true;
    UnlockUser: false, true;
    ReinviteUser: false, true;
    RevokeInvitation: false, true;
    SendPasswordReset: false, true;
    ListDevicesForUser: true, true;
    ResetDevicesForUser: false, true;
    ExportUsers: true, true;
    GetUserTemplate: true, true;
    BatchCreateUser: false, true;
    BatchDeleteUser: false, true;
    BatchSuspendUser: false, true;

    ListBots: true, true;
    CreateBot: false, true;
    GetBot: true, true;
    UpdateBot: false, true;
    DeleteBot: false, true;

    ListAdmins: true, false;
    CreateAdmin: false, false;
    GetAdmin: true, false;
    UpdateAdmin: false, false;
    DeleteAdmin: false, false;

    ListAuditEvents: true, false;
    ExportAuditEvents: true, false;
    VerifyAuditLog: true, false;

    CreateBackup: true, false;

    ListMail: true, false;

    GetClientProfile: true, true;

    GetCallingStatus: true, false;
    RotateTurnSecret: false, false;
    ListCalls: true, true;

    GetAnalytics: true, true;
    ExportAnalytics: true, true;
    GetSystemStatus: true, false;
}

impl Action {
    /// Actions every signed-in admin may perform on their own session and password.
    pub fn is_self_service(self) -> bool {
        matches!(
            self,
            Action::CreateAdminSession
                | Action::GetAdminSession
                | Action::DeleteAdminSession
                | Action::ChangeAdminPassword
        )
    }
}

/// May `role` perform `action` at all (network assignment is checked separately)?
pub fn allows(role: Role, action: Action) -> bool {
    use Action::*;
    if action.is_self_service() {
        return true;
    }
    match role {
        Role::Owner => true,
        // A connection test changes nothing, but it makes the appliance call out.
        Role::Auditor => {
            action.read_only() && !matches!(action, CreateBackup | RegisterOidcConfigTest)
        }
        Role::Admin => {
            action == ListNetworks
                || (action.network_scoped()
                    && !matches!(
                        action,
                        DeleteNetwork | UpdateDataRetention | PutComplianceDevice
                    ))
        }
        Role::Compliance => matches!(
            action,
            ListNetworks
                | GetNetwork
                | GetNetworkSettings
                | GetDataRetention
                | UpdateDataRetention
                | PutComplianceDevice
                | ListCalls
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_matrix_holds() {
        assert!(allows(Role::Owner, Action::DeleteNetwork));
        assert!(!allows(Role::Admin, Action::DeleteNetwork));
        assert!(!allows(Role::Admin, Action::CreateAdmin));
        assert!(allows(Role::Admin, Action::BatchSuspendUser));
        assert!(allows(Role::Auditor, Action::ListAuditEvents));
        assert!(!allows(Role::Auditor, Action::UpdateSecurityGroup));
        assert!(!allows(Role::Auditor, Action::CreateBackup));
        assert!(allows(Role::Compliance, Action::UpdateDataRetention));
        assert!(!allows(Role::Compliance, Action::ListUsers));
        assert!(allows(Role::Compliance, Action::ListCalls));
        assert!(allows(Role::Admin, Action::ListCalls));
        assert!(!allows(Role::Admin, Action::RotateTurnSecret));
        assert!(allows(Role::Auditor, Action::GetCallingStatus));
        assert!(allows(Role::Admin, Action::RegisterOidcConfig));
        assert!(allows(Role::Auditor, Action::GetOidcInfo));
        assert!(!allows(Role::Auditor, Action::RegisterOidcConfigTest));
        for a in Action::ALL {
            assert_eq!(Action::from_name(a.name()), Some(*a));
            if !a.read_only() {
                assert!(!allows(Role::Auditor, *a) || a.is_self_service(), "{a:?}");
            }
        }
    }
}
