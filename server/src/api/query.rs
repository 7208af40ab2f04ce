//! Harbor's list-query syntax: the `q` and `sort` parameters, parsed into the filter terms and
//! sort keys `db::query` turns into SQL.
//!
//! `q` is a comma-separated list of `key=value` terms where the value is
//! - `v` — exact match,
//! - `~v` — fuzzy (substring, case-insensitive for text),
//! - `[a~b]` — range, either end may be empty,
//! - `{a b c}` — any of the space-separated values,
//! - `(a b c)` — all of them (for list-valued keys: an artifact's `labels`).
//!
//! `sort` is a comma-separated list of keys, each optionally prefixed with `-` (descending).
//! Every list endpoint declares which keys it accepts and the column each maps to
//! (`db::query::Col`, `db::query::order_by`); anything else is a 400 naming the key.

use crate::api::error::ApiError;
pub use crate::db::query::{Cond, SortKey};

/// A parsed `q`: the terms in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub terms: Vec<(String, Cond)>,
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into())
}

impl Query {
    pub fn parse(q: &str) -> Result<Query, ApiError> {
        let mut terms = Vec::new();
        for part in split_terms(q) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("invalid query term {part:?}: expected key=value")))?;
            let (k, v) = (k.trim(), v.trim());
            if k.is_empty() {
                return Err(bad(format!("invalid query term {part:?}: empty key")));
            }
            let cond = if let Some(inner) = v.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                let (a, b) =
                    inner.split_once('~').ok_or_else(|| bad(format!("range of {k} needs '~': [from~to]")))?;
                let end = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
                if end(a).is_none() && end(b).is_none() {
                    return Err(bad(format!("range of {k} needs at least one end")));
                }
                Cond::Range(end(a), end(b))
            } else if let Some(inner) = v.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
                let vals: Vec<String> = inner.split_whitespace().map(str::to_string).collect();
                if vals.is_empty() {
                    return Err(bad(format!("{k}={{}} needs at least one value")));
                }
                Cond::Any(vals)
            } else if let Some(inner) = v.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
                let vals: Vec<String> = inner.split_whitespace().map(str::to_string).collect();
                if vals.is_empty() {
                    return Err(bad(format!("{k}=() needs at least one value")));
                }
                Cond::All(vals)
            } else if let Some(f) = v.strip_prefix('~') {
                Cond::Fuzzy(f.to_string())
            } else if v.starts_with('[') || v.starts_with('{') || v.starts_with('(') {
                return Err(bad(format!("unbalanced brackets in the value of {k}")));
            } else {
                Cond::Exact(v.to_string())
            };
            terms.push((k.to_string(), cond));
        }
        Ok(Query { terms })
    }

    pub fn get(&self, key: &str) -> Option<&Cond> {
        self.terms.iter().find(|(k, _)| k == key).map(|(_, c)| c)
    }
}

/// Splits on commas outside `[...]` and `{...}`.
fn split_terms(q: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0usize);
    for (i, c) in q.char_indices() {
        match c {
            '[' | '{' | '(' => depth += 1,
            ']' | '}' | ')' => depth -= 1,
            ',' if depth <= 0 => {
                out.push(&q[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&q[start..]);
    out
}

/// Parses `sort`: keys in order, `-` for descending. Absent or blank is no keys (the list's
/// default order); a `sort` that names no key (`,`, `-`) is a 400.
pub fn parse_sort(sort: Option<&str>) -> Result<Vec<SortKey>, ApiError> {
    let Some(sort) = sort.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(vec![]);
    };
    let mut keys = Vec::new();
    for item in sort.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (desc, key) = match item.strip_prefix('-') {
            Some(k) => (true, k),
            None => (false, item),
        };
        if key.is_empty() {
            return Err(bad(format!("sort {sort:?} names no key")));
        }
        keys.push(SortKey { key: key.to_string(), desc });
    }
    if keys.is_empty() {
        return Err(bad(format!("sort {sort:?} names no key")));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::query::{order_by, Col, Sql, Stmt};

    #[test]
    fn grammar() {
        let q = Query::parse("name=~nginx,tags={v1 v2},push_time=[2026-01-01 00:00:00~],id=7").unwrap();
        assert_eq!(
            q.terms,
            vec![
                ("name".into(), Cond::Fuzzy("nginx".into())),
                ("tags".into(), Cond::Any(vec!["v1".into(), "v2".into()])),
                ("push_time".into(), Cond::Range(Some("2026-01-01 00:00:00".into()), None)),
                ("id".into(), Cond::Exact("7".into())),
            ]
        );
        assert_eq!(Query::parse("").unwrap().terms, vec![]);
        assert_eq!(Query::parse("a=[1~2],b=x").unwrap().terms.len(), 2);
        for bad in ["novalue", "=x", "a=[1 2]", "a=[~]", "a={}", "a=[1~2", "a={x", "a=()", "a=(1 2"] {
            assert!(Query::parse(bad).is_err(), "{bad}");
        }
        // Harbor's "and" list, commas inside it do not split terms.
        assert_eq!(
            Query::parse("labels=(1 2),tags=*").unwrap().terms,
            vec![
                ("labels".into(), Cond::All(vec!["1".into(), "2".into()])),
                ("tags".into(), Cond::Exact("*".into()))
            ]
        );
        // A (…) list on a plain column is refused.
        let q = Query::parse("name=(a b)").unwrap();
        assert!(Sql::new().filter(&q.terms, &[("name", Col::Text("name"))], &[]).is_err());
    }

    /// `q` through to SQL: the parsed terms become bound, typed conditions.
    #[test]
    fn sql_is_bound_and_typed() {
        let keys = [
            ("name", Col::Text("r.name")),
            ("id", Col::Int("r.id")),
            ("t", Col::Time("r.t")),
            ("public", Col::Flag("p.public")),
        ];
        let q = Query::parse("name=~A_b,id={1 2},t=[0~2026-01-01T00:00:00Z],public=true").unwrap();
        let mut sql = Sql::new();
        sql.filter(&q.terms, &keys, &[]).unwrap();
        let mut s = Stmt::new("SELECT 1 FROM r WHERE a = ?");
        s.bind(1).and(&sql);
        assert_eq!(
            s.sql(),
            "SELECT 1 FROM r WHERE a = $1 AND lower(r.name) LIKE $2 ESCAPE '\\' AND r.id IN ($3, $4) \
             AND r.t >= $5 AND r.t <= $6 AND p.public = $7"
        );
        for bad in ["color=red", "id=x", "id=~1", "name=[a~b]", "public=maybe", "t=[x~]"] {
            assert!(Sql::new().filter(&Query::parse(bad).unwrap().terms, &keys, &[]).is_err(), "{bad}");
        }
    }

    #[test]
    fn sorting() {
        let keys = [("name", "r.name"), ("creation_time", "r.created_at")];
        let order = |s: Option<&str>| -> Result<String, ApiError> {
            Ok(order_by(&parse_sort(s)?, &keys, "r.name", "r.id")?)
        };
        assert_eq!(order(None).unwrap(), " ORDER BY r.name, r.id");
        assert_eq!(order(Some(" ")).unwrap(), " ORDER BY r.name, r.id");
        assert_eq!(order(Some("-creation_time,name")).unwrap(), " ORDER BY r.created_at DESC, r.name, r.id");
        assert!(order(Some("size; DROP TABLE x")).is_err());
        for bad in [",", " , ,", "-", "name,name", "name,-name"] {
            assert!(order(Some(bad)).is_err(), "{bad}");
        }
        let many = vec!["name"; 5000].join(",");
        assert!(order(Some(&many)).is_err());
    }
}
