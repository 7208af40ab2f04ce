//! Settings a system admin changes at run time (`GET/PUT /api/v2.0/configurations`), stored
//! in the `settings` table so every replica sees the same values. A key never set takes its
//! default from the configuration file (`token.lifetime`) or from Harbor's defaults.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::db::{now_ms, Db};

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Settings {
    /// `everyone` or `adminonly`.
    pub project_creation_restriction: String,
    pub self_registration: bool,
    /// Registry token lifetime in minutes.
    pub token_expiration: i64,
    /// Default robot lifetime in days (-1: never expires).
    pub robot_token_duration: i64,
}

impl Settings {
    pub fn defaults(cfg: &Config) -> Settings {
        Settings {
            project_creation_restriction: "everyone".into(),
            self_registration: false,
            token_expiration: (cfg.token.lifetime.as_secs() / 60) as i64,
            robot_token_duration: 30,
        }
    }

    /// Applies one stored or submitted value; `Err` names what is wrong with it.
    fn apply(&mut self, key: &str, v: &Value) -> Result<(), String> {
        match key {
            "project_creation_restriction" => match v.as_str() {
                Some(s @ ("everyone" | "adminonly")) => self.project_creation_restriction = s.into(),
                _ => return Err(format!("{key} must be \"everyone\" or \"adminonly\"")),
            },
            "self_registration" => {
                self.self_registration = v.as_bool().ok_or_else(|| format!("{key} must be true or false"))?
            }
            "token_expiration" => match v.as_i64() {
                Some(m) if (1..=7 * 24 * 60).contains(&m) => self.token_expiration = m,
                _ => return Err(format!("{key} must be a number of minutes between 1 and 10080")),
            },
            "robot_token_duration" => match v.as_i64() {
                Some(d) if d == -1 || (1..=36_500).contains(&d) => self.robot_token_duration = d,
                _ => return Err(format!("{key} must be -1 (never expires) or a number of days up to 36500")),
            },
            other => return Err(format!("unknown or read-only configuration {other:?}")),
        }
        Ok(())
    }

    /// Harbor's `GET /configurations` shape: `{key: {value, editable}}`.
    /// `GET /configurations`: every setting with whether it may be changed.
    pub fn to_rest(&self) -> app::rest::Configurations {
        use app::rest::ConfigItem;
        app::rest::Configurations {
            project_creation_restriction: ConfigItem::editable(self.project_creation_restriction.clone()),
            self_registration: ConfigItem::editable(self.self_registration),
            token_expiration: ConfigItem::editable(self.token_expiration),
            robot_token_duration: ConfigItem::editable(self.robot_token_duration),
            auth_mode: ConfigItem { value: "db_auth".into(), editable: false },
        }
    }
}

pub async fn load(db: &Db, cfg: &Config) -> Result<Settings, sqlx::Error> {
    let mut s = Settings::defaults(cfg);
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT name, value FROM settings").fetch_all(&db.pool).await?;
    for (k, v) in rows {
        if let Ok(v) = serde_json::from_str::<Value>(&v) {
            if let Err(e) = s.apply(&k, &v) {
                tracing::warn!(key = %k, error = %e, "ignoring an invalid stored setting");
            }
        }
    }
    Ok(s)
}

/// Validates every submitted key first, then stores them in one transaction. Returns the keys
/// that changed.
pub async fn update(
    db: &Db,
    cfg: &Config,
    changes: &HashMap<String, Value>,
) -> Result<Vec<String>, UpdateError> {
    let mut probe = load(db, cfg).await?;
    for (k, v) in changes {
        probe.apply(k, v).map_err(UpdateError::Invalid)?;
    }
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let mut keys: Vec<String> = changes.keys().cloned().collect();
    keys.sort();
    for k in &keys {
        sqlx::query(
            "INSERT INTO settings (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = $2, updated_at = $3",
        )
        .bind(k)
        .bind(changes[k].to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(keys)
}

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validation() {
        let mut s = Settings::defaults(&Config::default());
        assert_eq!(s.token_expiration, 30);
        assert!(s.apply("project_creation_restriction", &json!("adminonly")).is_ok());
        assert!(s.apply("project_creation_restriction", &json!("nobody")).is_err());
        assert!(s.apply("self_registration", &json!("yes")).is_err());
        assert!(s.apply("token_expiration", &json!(0)).is_err());
        assert!(s.apply("robot_token_duration", &json!(-1)).is_ok());
        assert!(s.apply("robot_token_duration", &json!(-2)).is_err());
        assert!(s.apply("auth_mode", &json!("ldap_auth")).is_err());
        assert_eq!(s.project_creation_restriction, "adminonly");
    }
}
