//! User groups (Harbor's `usergroup`): LDAP groups (found by DN), HTTP groups and OIDC groups
//! (found by name). A group can be a project member (`project_members.group_id`); a user's
//! groups come from the directory or provider at login (`populate`), never from a stored list.

use serde::Serialize;

use crate::db::{now_ms, Db};

/// Harbor's group types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum GroupType {
    Ldap = 1,
    Http = 2,
    Oidc = 3,
}

impl GroupType {
    pub fn from_id(id: i64) -> Option<GroupType> {
        match id {
            1 => Some(GroupType::Ldap),
            2 => Some(GroupType::Http),
            3 => Some(GroupType::Oidc),
            _ => None,
        }
    }

    pub fn id(self) -> i64 {
        self as i64
    }
}

/// A group as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Group {
    pub id: i64,
    pub group_name: String,
    pub group_type: i64,
    pub ldap_group_dn: String,
    pub created_at: i64,
    pub updated_at: i64,
}

pub const GROUP_COLUMNS: &str = "id, group_name, group_type, ldap_group_dn, created_at, updated_at";

/// A group to find or create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGroup {
    pub kind: GroupType,
    pub name: String,
    /// LDAP groups only.
    pub ldap_dn: String,
}

impl NewGroup {
    /// What finds the group: lower-cased DN for LDAP, the name otherwise (`user_groups.group_key`).
    pub fn key(&self) -> String {
        match self.kind {
            GroupType::Ldap => self.ldap_dn.trim().to_lowercase(),
            _ => self.name.clone(),
        }
    }
}

/// Longest group name or DN kept (longer ones from a directory are skipped).
pub const MAX_GROUP_FIELD: usize = 1024;
/// Most groups taken from one login (a user in more is cut here, in the order given).
pub const MAX_GROUPS_PER_LOGIN: usize = 512;

/// The ids of the given groups, creating the missing ones (Harbor onboards groups at login).
/// Safe against a concurrent login creating the same group (insert-or-ignore, then select).
pub async fn populate(db: &Db, groups: &[NewGroup]) -> Result<Vec<i64>, sqlx::Error> {
    let mut ids = Vec::new();
    for g in groups.iter().take(MAX_GROUPS_PER_LOGIN) {
        let key = g.key();
        if key.is_empty() || key.len() > MAX_GROUP_FIELD || g.name.len() > MAX_GROUP_FIELD {
            continue;
        }
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM user_groups WHERE group_type = $1 AND group_key = $2")
                .bind(g.kind.id())
                .bind(&key)
                .fetch_optional(&db.pool)
                .await?;
        let id = match found {
            Some(id) => id,
            None => {
                let now = now_ms();
                sqlx::query(
                    "INSERT INTO user_groups (group_name, group_type, ldap_group_dn, group_key, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (group_type, group_key) DO NOTHING",
                )
                .bind(&g.name)
                .bind(g.kind.id())
                .bind(g.ldap_dn.trim())
                .bind(&key)
                .bind(now)
                .execute(&db.pool)
                .await?;
                sqlx::query_scalar("SELECT id FROM user_groups WHERE group_type = $1 AND group_key = $2")
                    .bind(g.kind.id())
                    .bind(&key)
                    .fetch_one(&db.pool)
                    .await?
            }
        };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}
