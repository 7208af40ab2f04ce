//! User groups (Harbor's `usergroup`): LDAP groups (found by DN), HTTP groups and OIDC groups
//! (found by name). A group can be a project member (`project_members.group_id`); a user's
//! groups come from the directory or provider at login (`populate`), never from a stored list.
//!
//! - **What finds a group is `(group_type, group_key)`**, unique in the database: the
//!   lower-cased DN of an LDAP group, the name of any other. `populate` (logins) and `create`
//!   (`POST /usergroups`) rely on that index, so a duplicate is a conflict, never a second row.
//! - Only the name of a group changes (`rename`, as Harbor's `UpdateName`); renaming an HTTP or
//!   OIDC group changes its key too, so the provider's new name finds it.
//! - **Deleting a group removes its project memberships in the same transaction** (`delete`):
//!   a session still carrying the group's id gets no role from it.
//! - The REST surface is `api/usergroups.rs`; project members by group are `projects.rs`.

use serde::Serialize;

use crate::db::error::is_conflict;
use crate::db::query::{contains, Sql, Stmt};
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

/// Longest group name a client may give (Harbor's `group_name` column).
pub const MAX_GROUP_NAME: usize = 255;

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Exists(String),
    #[error("user group not found")]
    NotFound,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Checks a group name given by a client: 1-255 characters, not only spaces, no control
/// characters.
pub fn validate_name(name: &str) -> Result<(), GroupError> {
    if name.trim().is_empty() {
        return Err(GroupError::Invalid("group_name is required".into()));
    }
    if name.chars().count() > MAX_GROUP_NAME {
        return Err(GroupError::Invalid(format!("group_name is longer than {MAX_GROUP_NAME} characters")));
    }
    if name.chars().any(char::is_control) {
        return Err(GroupError::Invalid("group_name must not contain control characters".into()));
    }
    Ok(())
}

/// Checks a group to create: a known type, a valid name and, for an LDAP group, a DN of valid
/// syntax (RFC 4514); only LDAP groups have a DN.
pub fn validate(g: &NewGroup) -> Result<(), GroupError> {
    validate_name(&g.name)?;
    match g.kind {
        GroupType::Ldap => {
            let dn = g.ldap_dn.trim();
            if dn.is_empty() {
                return Err(GroupError::Invalid(
                    "an LDAP group (group_type 1) needs its ldap_group_dn".into(),
                ));
            }
            if dn.len() > MAX_GROUP_FIELD {
                return Err(GroupError::Invalid(format!(
                    "ldap_group_dn is longer than {MAX_GROUP_FIELD} bytes"
                )));
            }
            if parse_dn(dn).is_none() {
                return Err(GroupError::Invalid(format!("invalid DN syntax: {dn:?}")));
            }
        }
        GroupType::Http | GroupType::Oidc => {
            if !g.ldap_dn.trim().is_empty() {
                return Err(GroupError::Invalid(
                    "only LDAP groups (group_type 1) have an ldap_group_dn".into(),
                ));
            }
        }
    }
    Ok(())
}

/// The type of a client's `group_type`.
pub fn parse_type(id: i64) -> Result<GroupType, GroupError> {
    GroupType::from_id(id).ok_or_else(|| {
        GroupError::Invalid("group_type must be 1 (LDAP group), 2 (HTTP group) or 3 (OIDC group)".into())
    })
}

/// A DN's relative distinguished names, each a list of (attribute type, unescaped value), when
/// `dn` is valid RFC 4514 syntax (spaces around separators allowed, `;` read as `,`, as
/// directory libraries accept). Values must not be empty.
pub fn parse_dn(dn: &str) -> Option<Vec<Vec<(String, String)>>> {
    let b = dn.as_bytes();
    let mut rdns = Vec::new();
    let mut rdn = Vec::new();
    let mut i = 0;
    loop {
        // attribute type
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        if i == b.len() {
            return None;
        }
        let attr = dn[start..i].trim_end();
        if !valid_attribute_type(attr) {
            return None;
        }
        i += 1;
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        // value
        let mut value = Vec::new();
        if i < b.len() && b[i] == b'#' {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
            if i == start || (i - start) % 2 != 0 {
                return None;
            }
            value.extend_from_slice(&b[start - 1..i]);
        } else {
            // Trailing unescaped spaces are not part of the value.
            let mut kept = 0;
            while i < b.len() && !matches!(b[i], b',' | b';' | b'+') {
                match b[i] {
                    b'\\' => {
                        let next = *b.get(i + 1)?;
                        if next.is_ascii_hexdigit() {
                            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                            value.push(u8::from_str_radix(hex, 16).ok()?);
                            i += 3;
                        } else if b"\\\"+,;<>#= ".contains(&next) {
                            value.push(next);
                            i += 2;
                        } else {
                            return None;
                        }
                        kept = value.len();
                    }
                    b'"' | b'<' | b'>' | 0 => return None,
                    c => {
                        value.push(c);
                        if c != b' ' {
                            kept = value.len();
                        }
                        i += 1;
                    }
                }
            }
            value.truncate(kept);
        }
        if value.is_empty() {
            return None;
        }
        rdn.push((attr.to_string(), String::from_utf8(value).ok()?));
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        match b.get(i) {
            None => {
                rdns.push(rdn);
                return Some(rdns);
            }
            Some(b'+') => {}
            Some(b',' | b';') => rdns.push(std::mem::take(&mut rdn)),
            Some(_) => return None,
        }
        i += 1;
    }
}

/// `descr` (a letter, then letters, digits, hyphens) or a numeric OID.
fn valid_attribute_type(a: &str) -> bool {
    let b = a.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() => b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-'),
        Some(c) if c.is_ascii_digit() => {
            a.split('.').count() > 1
                && a.split('.').all(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
        }
        _ => false,
    }
}

/// The value of a DN's first attribute (`cn=devs,ou=groups,…` → `devs`): the name an LDAP
/// group gets when none is given.
pub fn dn_first_value(dn: &str) -> Option<String> {
    parse_dn(dn.trim())?.into_iter().next()?.into_iter().next().map(|(_, v)| v)
}

/// A list of groups (`GET /usergroups`).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Part of the name (case-insensitive).
    pub group_name: Option<String>,
    /// An LDAP group's DN (compared as `group_key`: case-insensitive).
    pub ldap_group_dn: Option<String>,
    /// Only groups of this type.
    pub group_type: Option<GroupType>,
    /// 1-based.
    pub page: u64,
    pub page_size: u64,
}

fn page_clause(page: u64, page_size: u64) -> String {
    let page_size = page_size.clamp(1, 100);
    let offset = (page.max(1) - 1).saturating_mul(page_size);
    format!(" LIMIT {page_size} OFFSET {offset}")
}

async fn list_where(
    db: &Db,
    sql: &Sql,
    order: &str,
    page: u64,
    page_size: u64,
) -> Result<(Vec<Group>, i64), sqlx::Error> {
    let mut count = Stmt::new("SELECT COUNT(*) FROM user_groups");
    count.where_(sql);
    let total: i64 = count.query_scalar().fetch_one(&db.pool).await?;
    let mut list = Stmt::new(&format!("SELECT {GROUP_COLUMNS} FROM user_groups"));
    list.where_(sql).push(&format!(" ORDER BY {order}{}", page_clause(page, page_size)));
    Ok((list.query_as().fetch_all(&db.pool).await?, total))
}

/// One page of groups, by name, and the total.
pub async fn list(db: &Db, q: &ListQuery) -> Result<(Vec<Group>, i64), sqlx::Error> {
    let mut sql = Sql::new();
    if let Some(name) = q.group_name.as_deref().filter(|n| !n.is_empty()) {
        sql.push("lower(group_name) LIKE ? ESCAPE '\\'", contains(name));
    }
    if let Some(dn) = q.ldap_group_dn.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        sql.push("group_type = 1 AND group_key = ?", dn.to_lowercase().into());
    }
    if let Some(t) = q.group_type {
        sql.push("group_type = ?", t.id().into());
    }
    list_where(db, &sql, "group_name, id", q.page, q.page_size).await
}

/// Groups whose name contains `name` (case-insensitive), the closest matches (shortest names)
/// first, as Harbor's search orders them; one page and the total.
pub async fn search(
    db: &Db,
    name: &str,
    page: u64,
    page_size: u64,
) -> Result<(Vec<Group>, i64), sqlx::Error> {
    let mut sql = Sql::new();
    sql.push("lower(group_name) LIKE ? ESCAPE '\\'", contains(name));
    list_where(db, &sql, "length(group_name), group_name, id", page, page_size).await
}

pub async fn get(db: &Db, id: i64) -> Result<Option<Group>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {GROUP_COLUMNS} FROM user_groups WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await
}

/// The group `(kind, key)` finds (`NewGroup::key`).
pub async fn find(db: &Db, kind: GroupType, key: &str) -> Result<Option<Group>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {GROUP_COLUMNS} FROM user_groups WHERE group_type = $1 AND group_key = $2"
    ))
    .bind(kind.id())
    .bind(key)
    .fetch_optional(&db.pool)
    .await
}

/// The oldest group with exactly this name, of `kind` or of any type.
pub async fn find_by_name(
    db: &Db,
    kind: Option<GroupType>,
    name: &str,
) -> Result<Option<Group>, sqlx::Error> {
    let mut q = Stmt::new(&format!("SELECT {GROUP_COLUMNS} FROM user_groups WHERE group_name = ?"));
    q.bind(name);
    if let Some(k) = kind {
        q.push_bind(" AND group_type = ?", k.id());
    }
    q.push(" ORDER BY id LIMIT 1");
    q.query_as().fetch_optional(&db.pool).await
}

fn duplicate(g: &NewGroup) -> GroupError {
    GroupError::Exists(match g.kind {
        GroupType::Ldap => {
            format!("an LDAP group with DN {:?} or name {:?} exists already", g.ldap_dn.trim(), g.name)
        }
        _ => format!("a group of type {} named {:?} exists already", g.kind.id(), g.name),
    })
}

/// Creates a group (`validate`d first). The same `(type, key)` is a conflict (the unique
/// index decides); so is an LDAP group named like another LDAP group (Harbor's rule).
pub async fn create(db: &Db, g: &NewGroup) -> Result<Group, GroupError> {
    validate(g)?;
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    if g.kind == GroupType::Ldap {
        let same_name: Option<i64> =
            sqlx::query_scalar("SELECT id FROM user_groups WHERE group_type = 1 AND group_name = $1")
                .bind(&g.name)
                .fetch_optional(&mut *tx)
                .await?;
        if same_name.is_some() {
            return Err(duplicate(g));
        }
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO user_groups (group_name, group_type, ldap_group_dn, group_key, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(&g.name)
    .bind(g.kind.id())
    .bind(g.ldap_dn.trim())
    .bind(g.key())
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| if is_conflict(&e) { duplicate(g) } else { e.into() })?;
    tx.commit().await?;
    get(db, id).await?.ok_or(GroupError::NotFound)
}

/// Renames a group (the only change Harbor allows). An HTTP or OIDC group's key is its name,
/// so it changes too; a name another group of the type has is a conflict.
pub async fn rename(db: &Db, id: i64, name: &str) -> Result<Group, GroupError> {
    validate_name(name)?;
    let mut tx = db.begin_write().await?;
    let g: Group = sqlx::query_as(&format!("SELECT {GROUP_COLUMNS} FROM user_groups WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(GroupError::NotFound)?;
    let taken: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM user_groups WHERE group_type = $1 AND group_name = $2 AND id <> $3",
    )
    .bind(g.group_type)
    .bind(name)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let conflict =
        || GroupError::Exists(format!("a group of type {} named {name:?} exists already", g.group_type));
    if taken.is_some() {
        return Err(conflict());
    }
    let sql = if g.group_type == GroupType::Ldap.id() {
        "UPDATE user_groups SET group_name = $1, updated_at = $2 WHERE id = $3"
    } else {
        "UPDATE user_groups SET group_name = $1, group_key = $1, updated_at = $2 WHERE id = $3"
    };
    sqlx::query(sql).bind(name).bind(now_ms()).bind(id).execute(&mut *tx).await.map_err(|e| {
        if is_conflict(&e) {
            conflict()
        } else {
            e.into()
        }
    })?;
    tx.commit().await?;
    get(db, id).await?.ok_or(GroupError::NotFound)
}

/// Deletes a group and, in the same transaction, its project memberships. Returns the group
/// and how many memberships went.
pub async fn delete(db: &Db, id: i64) -> Result<(Group, u64), GroupError> {
    let mut tx = db.begin_write().await?;
    let g: Group = sqlx::query_as(&format!("SELECT {GROUP_COLUMNS} FROM user_groups WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(GroupError::NotFound)?;
    let members = sqlx::query("DELETE FROM project_members WHERE entity_type = 'g' AND group_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM user_groups WHERE id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok((g, members))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_syntax() {
        for ok in [
            "cn=devs,ou=groups,dc=example,dc=com",
            "CN=Dev Team , OU=Groups;DC=example",
            "cn=a\\,b,dc=x",
            "cn=a\\2Cb,dc=x",
            "cn=x+uid=y,dc=z",
            "2.5.4.3=devs,dc=x",
            "cn=#04024869,dc=x",
            "cn=a=b",
            "cn=#0402 , dc=x",
        ] {
            assert!(parse_dn(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "devs",
            "cn=",
            "=devs",
            "cn=devs,",
            ",cn=devs",
            "cn=devs,,dc=x",
            "cn=a\\zz",
            "cn=a\\",
            "c n=devs",
            "1cn=x",
            "cn=#abc",
            "cn=a\"b",
            "cn=<x>",
            "cn=x+",
            "2.5.=x",
            "cn=#0402 x",
        ] {
            assert!(parse_dn(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn first_value_is_unescaped() {
        assert_eq!(dn_first_value("cn=devs,ou=groups,dc=example").as_deref(), Some("devs"));
        assert_eq!(dn_first_value(" CN=Dev Team , OU=Groups").as_deref(), Some("Dev Team"));
        assert_eq!(dn_first_value("cn=a\\,b\\2Bc,dc=x").as_deref(), Some("a,b+c"));
        assert_eq!(dn_first_value("cn=caf\\C3\\A9,dc=x").as_deref(), Some("café"));
        assert_eq!(dn_first_value("cn=trailing\\ ,dc=x").as_deref(), Some("trailing "));
        assert_eq!(dn_first_value("nonsense"), None);
    }

    #[test]
    fn validation() {
        let g = |kind, name: &str, dn: &str| NewGroup { kind, name: name.into(), ldap_dn: dn.into() };
        assert!(validate(&g(GroupType::Ldap, "devs", "cn=devs,dc=x")).is_ok());
        assert!(validate(&g(GroupType::Oidc, "devs", "")).is_ok());
        assert!(validate(&g(GroupType::Ldap, "devs", "")).is_err());
        assert!(validate(&g(GroupType::Ldap, "devs", "devs")).is_err());
        assert!(validate(&g(GroupType::Http, "devs", "cn=devs,dc=x")).is_err());
        assert!(validate(&g(GroupType::Oidc, " ", "")).is_err());
        assert!(validate(&g(GroupType::Oidc, &"x".repeat(256), "")).is_err());
        assert!(validate(&g(GroupType::Oidc, &"é".repeat(255), "")).is_ok());
        assert!(validate(&g(GroupType::Oidc, "a\nb", "")).is_err());
        assert!(parse_type(0).is_err() && parse_type(4).is_err() && parse_type(3).is_ok());
    }
}
