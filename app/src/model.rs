//! Data the portal shows, as sent from server functions to the browser.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: i64,
    pub username: String,
    pub realname: String,
    pub email: String,
    pub sysadmin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectView {
    pub id: i64,
    pub name: String,
    pub public: bool,
    pub owner_name: String,
    /// Unix milliseconds.
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectPage {
    pub items: Vec<ProjectView>,
    pub total: i64,
    pub page: u64,
    pub page_size: u64,
}

/// Only same-site absolute paths may be redirect targets after login (no open redirects).
pub fn safe_redirect(target: &str) -> String {
    let ok = target.starts_with('/')
        && !target.starts_with("//")
        && !target.contains('\\')
        && !target.chars().any(|c| c.is_control())
        && !target.starts_with("/account/sign-in");
    if ok {
        target.to_string()
    } else {
        "/harbor/projects".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::safe_redirect;

    #[test]
    fn redirects_stay_on_site() {
        assert_eq!(safe_redirect("/harbor/projects?name=x"), "/harbor/projects?name=x");
        for bad in
            ["https://evil.example", "//evil.example", "/\\evil", "", "javascript:x", "/account/sign-in"]
        {
            assert_eq!(safe_redirect(bad), "/harbor/projects", "{bad}");
        }
    }
}
