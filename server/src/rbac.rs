//! Who may do what in a project: Harbor's role matrix (goharbor/harbor
//! `src/common/rbac/project/rbac_role.go`), robot permission lists, public projects and system
//! admins, evaluated in one place.
//!
//! Invariants:
//! - **Every permission decision of the REST API, the token service and `/v2` Basic auth goes
//!   through `Principal::can`** (or `registry_actions`, built on it). Nothing else compares
//!   roles.
//! - **Robots get exactly their permission list** (never a role), and a disabled or expired
//!   robot cannot authenticate in the first place (`robots::authenticate`).
//! - **Anyone, even anonymous, may pull and read a public project**; nothing more.

use serde::Serialize;

use crate::accounts::User;
use crate::db::Db;
use crate::robots::Robot;

/// A project role, numbered as Harbor numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Role {
    ProjectAdmin = 1,
    Developer = 2,
    Guest = 3,
    Maintainer = 4,
    LimitedGuest = 5,
}

impl TryFrom<i64> for Role {
    type Error = String;

    fn try_from(id: i64) -> Result<Role, String> {
        Role::try_from_id(id)
    }
}

impl Role {
    pub fn from_id(id: i64) -> Option<Role> {
        Some(match id {
            1 => Role::ProjectAdmin,
            2 => Role::Developer,
            3 => Role::Guest,
            4 => Role::Maintainer,
            5 => Role::LimitedGuest,
            _ => return None,
        })
    }

    /// `from_id` for row types (`#[sqlx(try_from = "i64")]`).
    fn try_from_id(id: i64) -> Result<Role, String> {
        Role::from_id(id).ok_or_else(|| format!("bad role {id}"))
    }

    pub fn id(self) -> i64 {
        self as i64
    }

    /// How much a role may do: project admin > maintainer > developer > guest > limited guest.
    pub fn rank(self) -> u8 {
        match self {
            Role::ProjectAdmin => 5,
            Role::Maintainer => 4,
            Role::Developer => 3,
            Role::Guest => 2,
            Role::LimitedGuest => 1,
        }
    }

    /// The most privileged of several roles (a user's own and its groups').
    pub fn most_privileged(roles: impl IntoIterator<Item = Role>) -> Option<Role> {
        roles.into_iter().max_by_key(|r| r.rank())
    }

    /// Harbor's `role_name` strings.
    pub fn name(self) -> &'static str {
        match self {
            Role::ProjectAdmin => "projectAdmin",
            Role::Developer => "developer",
            Role::Guest => "guest",
            Role::Maintainer => "maintainer",
            Role::LimitedGuest => "limitedGuest",
        }
    }
}

/// Project resources (Harbor's `rbac.Resource*` names, as robots' permission lists spell them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The project itself.
    Project,
    Member,
    Metadata,
    Log,
    Repository,
    Artifact,
    Tag,
    Accessory,
    Robot,
    Configuration,
    Quota,
    /// Tag immutability rules (`immutable-tag`).
    ImmutableTag,
    /// Project labels (`label`); global labels are the system admin's.
    Label,
    /// Adding and removing labels on artifacts (`artifact-label`).
    ArtifactLabel,
    /// The tag retention policy and its runs (`tag-retention`).
    TagRetention,
    /// Webhook policies and their executions (`notification-policy`).
    NotificationPolicy,
}

impl Resource {
    pub fn parse(s: &str) -> Option<Resource> {
        Some(match s {
            "project" => Resource::Project,
            "member" => Resource::Member,
            "metadata" => Resource::Metadata,
            "log" => Resource::Log,
            "repository" => Resource::Repository,
            "artifact" => Resource::Artifact,
            "tag" => Resource::Tag,
            "accessory" => Resource::Accessory,
            "robot" => Resource::Robot,
            "configuration" => Resource::Configuration,
            "quota" => Resource::Quota,
            "immutable-tag" => Resource::ImmutableTag,
            "label" => Resource::Label,
            "artifact-label" => Resource::ArtifactLabel,
            "tag-retention" => Resource::TagRetention,
            "notification-policy" => Resource::NotificationPolicy,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Project => "project",
            Resource::Member => "member",
            Resource::Metadata => "metadata",
            Resource::Log => "log",
            Resource::Repository => "repository",
            Resource::Artifact => "artifact",
            Resource::Tag => "tag",
            Resource::Accessory => "accessory",
            Resource::Robot => "robot",
            Resource::Configuration => "configuration",
            Resource::Quota => "quota",
            Resource::ImmutableTag => "immutable-tag",
            Resource::Label => "label",
            Resource::ArtifactLabel => "artifact-label",
            Resource::TagRetention => "tag-retention",
            Resource::NotificationPolicy => "notification-policy",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Act {
    Create,
    Read,
    Update,
    Delete,
    List,
    Pull,
    Push,
}

impl Act {
    pub fn parse(s: &str) -> Option<Act> {
        Some(match s {
            "create" => Act::Create,
            "read" => Act::Read,
            "update" => Act::Update,
            "delete" => Act::Delete,
            "list" => Act::List,
            "pull" => Act::Pull,
            "push" => Act::Push,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Act::Create => "create",
            Act::Read => "read",
            Act::Update => "update",
            Act::Delete => "delete",
            Act::List => "list",
            Act::Pull => "pull",
            Act::Push => "push",
        }
    }
}

use Act::*;
use Resource as R;

/// What a role may do. Derived from Harbor's matrix, restricted to the resources this server
/// has (no scanners or helm charts). One deliberate difference: Harbor lets a
/// developer write the tag retention policy, which deletes artifacts a developer may not
/// delete; here developers only read it (running it is `update`, a maintainer's).
pub fn role_allows(role: Role, res: Resource, act: Act) -> bool {
    match role {
        Role::ProjectAdmin => true,
        Role::Maintainer => match res {
            R::Project => act == Read,
            R::Member => matches!(act, Read | List),
            R::Metadata => matches!(act, Create | Read | Update | Delete),
            R::Log => act == List,
            R::Quota => act == Read,
            R::Repository => matches!(act, Create | Read | Update | Delete | List | Pull | Push),
            R::Artifact => matches!(act, Create | Read | Delete | List),
            R::Tag => matches!(act, List | Create | Delete),
            R::Accessory => act == List,
            R::Robot => matches!(act, Read | List),
            R::Configuration => act == Read,
            R::ImmutableTag => matches!(act, Create | Update | Delete | List),
            R::Label => matches!(act, Create | Read | Update | Delete | List),
            R::ArtifactLabel => matches!(act, Create | Delete),
            R::TagRetention => matches!(act, Create | Read | Update | Delete | List),
            R::NotificationPolicy => matches!(act, Read | List),
        },
        Role::Developer => match res {
            R::Project => act == Read,
            R::Member => matches!(act, Read | List),
            R::Log => act == List,
            R::Quota => act == Read,
            R::Repository => matches!(act, Create | Read | Update | List | Pull | Push),
            R::Artifact => matches!(act, Create | Read | List),
            R::Tag => matches!(act, List | Create),
            R::Accessory => act == List,
            R::Robot => matches!(act, Read | List),
            R::Configuration => act == Read,
            R::Label => matches!(act, Read | List),
            R::ArtifactLabel => matches!(act, Create | Delete),
            R::TagRetention => matches!(act, Read | List),
            R::Metadata | R::ImmutableTag | R::NotificationPolicy => false,
        },
        Role::Guest => match res {
            R::Project => act == Read,
            R::Member => matches!(act, Read | List),
            R::Log => act == List,
            R::Quota => act == Read,
            R::Repository => matches!(act, Read | List | Pull),
            R::Artifact => matches!(act, Read | List),
            R::Tag => act == List,
            R::Accessory => act == List,
            R::Robot => matches!(act, Read | List),
            R::Configuration => act == Read,
            R::Label => matches!(act, Read | List),
            R::Metadata | R::ImmutableTag | R::ArtifactLabel | R::TagRetention => false,
            R::NotificationPolicy => false,
        },
        Role::LimitedGuest => match res {
            R::Project => act == Read,
            R::Quota => act == Read,
            R::Repository => matches!(act, List | Pull),
            R::Artifact => matches!(act, Read | List),
            R::Tag => act == List,
            R::Accessory => act == List,
            R::Configuration => act == Read,
            R::Member | R::Log | R::Robot | R::Metadata => false,
            R::ImmutableTag | R::Label | R::ArtifactLabel | R::TagRetention => false,
            R::NotificationPolicy => false,
        },
    }
}

/// What anyone may do in a public project.
pub fn public_allows(res: Resource, act: Act) -> bool {
    match res {
        R::Project => act == Read,
        R::Repository => matches!(act, Read | List | Pull),
        R::Artifact => matches!(act, Read | List),
        R::Tag | R::Accessory => act == List,
        _ => false,
    }
}

/// An authenticated account: a local user or a robot.
#[derive(Debug, Clone)]
pub enum Principal {
    User(User),
    Robot(Robot),
}

/// The project facts a decision needs.
#[derive(Debug, Clone, Copy)]
pub struct ProjectAccess {
    pub id: i64,
    pub public: bool,
}

impl Principal {
    /// The name audit rows and tokens carry (`robot$…` for robots).
    pub fn name(&self) -> &str {
        match self {
            Principal::User(u) => &u.username,
            Principal::Robot(r) => &r.name,
        }
    }

    pub fn user(&self) -> Option<&User> {
        match self {
            Principal::User(u) => Some(u),
            Principal::Robot(_) => None,
        }
    }

    pub fn is_sysadmin(&self) -> bool {
        matches!(self, Principal::User(u) if u.is_sysadmin())
    }

    /// The member role of a user in a project (robots have none).
    pub async fn role_in(&self, db: &Db, project_id: i64) -> Result<Option<Role>, sqlx::Error> {
        let Principal::User(u) = self else { return Ok(None) };
        member_role(db, project_id, u).await
    }

    /// Whether this principal may do `act` on `res` in the project.
    pub async fn can(&self, db: &Db, p: ProjectAccess, res: Resource, act: Act) -> Result<bool, sqlx::Error> {
        if p.public && public_allows(res, act) {
            return Ok(true);
        }
        match self {
            Principal::User(u) if u.is_sysadmin() => Ok(true),
            Principal::User(u) => {
                Ok(member_role(db, p.id, u).await?.is_some_and(|r| role_allows(r, res, act)))
            }
            Principal::Robot(r) => Ok(r.allows(p.id, res, act)),
        }
    }
}

/// Every decision for one caller in one project, with the member role loaded once (for
/// listing what the caller may do).
pub struct Decider {
    p: ProjectAccess,
    admin: bool,
    role: Option<Role>,
    robot: Option<Robot>,
}

impl Decider {
    pub async fn load(db: &Db, who: Option<&Principal>, p: ProjectAccess) -> Result<Decider, sqlx::Error> {
        let role = match who {
            Some(w) => w.role_in(db, p.id).await?,
            None => None,
        };
        let robot = match who {
            Some(Principal::Robot(r)) => Some(r.clone()),
            _ => None,
        };
        Ok(Decider { p, admin: who.is_some_and(Principal::is_sysadmin), role, robot })
    }

    /// Same answer as `allowed`.
    pub fn can(&self, res: Resource, act: Act) -> bool {
        (self.p.public && public_allows(res, act))
            || self.admin
            || self.role.is_some_and(|r| role_allows(r, res, act))
            || self.robot.as_ref().is_some_and(|r| r.allows(self.p.id, res, act))
    }
}

/// `can` for a possibly anonymous caller.
pub async fn allowed(
    db: &Db,
    who: Option<&Principal>,
    p: ProjectAccess,
    res: Resource,
    act: Act,
) -> Result<bool, sqlx::Error> {
    match who {
        Some(w) => w.can(db, p, res, act).await,
        None => Ok(p.public && public_allows(res, act)),
    }
}

/// Registry actions (`pull`, `push`, `delete`) the caller holds on the project's repositories,
/// for the token service. Push needs pull as well, as in Harbor.
pub async fn registry_actions(
    db: &Db,
    who: Option<&Principal>,
    p: ProjectAccess,
) -> Result<Vec<&'static str>, sqlx::Error> {
    let mut out = Vec::new();
    let pull = allowed(db, who, p, R::Repository, Pull).await?;
    if pull {
        out.push("pull");
        if allowed(db, who, p, R::Repository, Push).await? {
            out.push("push");
        }
    }
    if registry_delete_allowed(db, who, p).await? {
        out.push("delete");
    }
    Ok(out)
}

/// Deleting manifests, tags or blobs over `/v2`: Harbor's `repository:delete`, which robots
/// may also hold as `artifact:delete`.
pub async fn registry_delete_allowed(
    db: &Db,
    who: Option<&Principal>,
    p: ProjectAccess,
) -> Result<bool, sqlx::Error> {
    Ok(allowed(db, who, p, R::Repository, Delete).await? || allowed(db, who, p, R::Artifact, Delete).await?)
}

/// The user's role in a project: as a member itself or through any of its groups
/// (`User::groups`), the most privileged one winning (Harbor's rule).
pub async fn member_role(db: &Db, project_id: i64, user: &User) -> Result<Option<Role>, sqlx::Error> {
    let mut q =
        crate::db::query::Stmt::new("SELECT role FROM project_members WHERE project_id = ? AND (user_id = ?");
    q.bind(project_id).bind(user.id);
    if !user.groups.is_empty() {
        q.push(" OR group_id IN (").push_list(user.groups.iter().copied()).push(")");
    }
    q.push(")");
    let roles: Vec<i64> = q.query_scalar().fetch_all(&db.pool).await?;
    Ok(Role::most_privileged(roles.into_iter().filter_map(Role::from_id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_ROLES: [Role; 5] =
        [Role::ProjectAdmin, Role::Maintainer, Role::Developer, Role::Guest, Role::LimitedGuest];

    fn who_can(res: Resource, act: Act) -> Vec<&'static str> {
        ALL_ROLES.iter().filter(|r| role_allows(**r, res, act)).map(|r| r.name()).collect()
    }

    #[test]
    fn matrix_follows_harbor() {
        assert_eq!(
            who_can(R::Repository, Pull),
            ["projectAdmin", "maintainer", "developer", "guest", "limitedGuest"]
        );
        assert_eq!(who_can(R::Repository, Push), ["projectAdmin", "maintainer", "developer"]);
        assert_eq!(who_can(R::Repository, Delete), ["projectAdmin", "maintainer"]);
        assert_eq!(who_can(R::Artifact, Delete), ["projectAdmin", "maintainer"]);
        assert_eq!(who_can(R::Tag, Create), ["projectAdmin", "maintainer", "developer"]);
        assert_eq!(who_can(R::Tag, Delete), ["projectAdmin", "maintainer"]);
        assert_eq!(who_can(R::Member, Create), ["projectAdmin"]);
        assert_eq!(who_can(R::Member, List), ["projectAdmin", "maintainer", "developer", "guest"]);
        assert_eq!(who_can(R::Log, List), ["projectAdmin", "maintainer", "developer", "guest"]);
        assert_eq!(who_can(R::Robot, Create), ["projectAdmin"]);
        assert_eq!(who_can(R::Project, Delete), ["projectAdmin"]);
        assert_eq!(who_can(R::Project, Update), ["projectAdmin"]);
        assert_eq!(who_can(R::Project, Read).len(), 5);
        assert_eq!(who_can(R::Repository, Read), ["projectAdmin", "maintainer", "developer", "guest"]);
        assert_eq!(who_can(R::ImmutableTag, Create), ["projectAdmin", "maintainer"]);
        assert_eq!(who_can(R::ImmutableTag, List), ["projectAdmin", "maintainer"]);
        assert_eq!(who_can(R::Label, Create), ["projectAdmin", "maintainer"]);
        assert_eq!(who_can(R::Label, List), ["projectAdmin", "maintainer", "developer", "guest"]);
        assert_eq!(who_can(R::ArtifactLabel, Create), ["projectAdmin", "maintainer", "developer"]);
        assert_eq!(who_can(R::ArtifactLabel, Delete), ["projectAdmin", "maintainer", "developer"]);
        assert_eq!(who_can(R::TagRetention, Update), ["projectAdmin", "maintainer"]);
        assert_eq!(who_can(R::TagRetention, Read), ["projectAdmin", "maintainer", "developer"]);
    }

    #[test]
    fn public_projects_allow_reading_only() {
        assert!(public_allows(R::Repository, Pull));
        assert!(public_allows(R::Artifact, List));
        assert!(!public_allows(R::Repository, Push));
        assert!(!public_allows(R::Artifact, Delete));
        assert!(!public_allows(R::Member, List));
        assert!(!public_allows(R::Log, List));
    }

    #[test]
    fn role_ids_round_trip() {
        for r in ALL_ROLES {
            assert_eq!(Role::from_id(r.id()), Some(r));
        }
        assert_eq!(Role::from_id(0), None);
        assert_eq!(Role::from_id(6), None);
    }
}
