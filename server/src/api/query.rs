//! Harbor's list-query conventions: `q` and `sort`.
//!
//! `q` is a comma-separated list of `key=value` terms where the value is
//! - `v` — exact match,
//! - `~v` — fuzzy (substring, case-insensitive for text),
//! - `[a~b]` — range, either end may be empty,
//! - `{a b c}` — any of the space-separated values.
//!
//! `sort` is a comma-separated list of keys, each optionally prefixed with `-` (descending).
//! Every list endpoint declares which keys it accepts and the column each maps to; anything else
//! is a 400 naming the key, and values are always bound, never spliced into SQL.

use crate::api::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Exact(String),
    Fuzzy(String),
    Range(Option<String>, Option<String>),
    Any(Vec<String>),
}

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
            } else if let Some(f) = v.strip_prefix('~') {
                Cond::Fuzzy(f.to_string())
            } else if v.starts_with('[') || v.starts_with('{') {
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
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
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

/// How a key maps to SQL.
#[derive(Debug, Clone, Copy)]
pub enum Col {
    /// A text column; fuzzy matching is case-insensitive.
    Text(&'static str),
    /// A text column matched exactly only (no fuzzy match, range or set).
    Keyword(&'static str),
    /// An integer column.
    Int(&'static str),
    /// A Unix-milliseconds column; values are RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) or ms.
    Time(&'static str),
    /// A 0/1 column; values `true`/`false`.
    Flag(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    I(i64),
    S(String),
}

/// SQL conditions and their bind values, placeholders numbered from a given start.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    pub clauses: Vec<String>,
    pub binds: Vec<Bind>,
    next: usize,
}

impl Sql {
    pub fn starting_at(first: usize) -> Sql {
        Sql { clauses: vec![], binds: vec![], next: first }
    }

    /// Adds a clause where `?` stands for the next placeholder.
    pub fn push(&mut self, clause: &str, b: Bind) {
        self.clauses.push(clause.replacen('?', &format!("${}", self.next), 1));
        self.binds.push(b);
        self.next += 1;
    }

    pub fn push_raw(&mut self, clause: &str) {
        self.clauses.push(clause.to_string());
    }

    /// ` AND c1 AND c2…` (empty when there is nothing).
    pub fn and(&self) -> String {
        self.clauses.iter().map(|c| format!(" AND {c}")).collect()
    }

    pub fn next_param(&self) -> usize {
        self.next
    }
}

/// Binds `binds` in order to a query.
pub fn bind_query<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    binds: &'q [Bind],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for b in binds {
        q = match b {
            Bind::I(i) => q.bind(*i),
            Bind::S(s) => q.bind(s.as_str()),
        };
    }
    q
}

/// Binds `binds` in order to a scalar query.
pub fn bind_scalar<'q>(
    mut q: sqlx::query::QueryScalar<'q, sqlx::Any, i64, sqlx::any::AnyArguments<'q>>,
    binds: &'q [Bind],
) -> sqlx::query::QueryScalar<'q, sqlx::Any, i64, sqlx::any::AnyArguments<'q>> {
    for b in binds {
        q = match b {
            Bind::I(i) => q.bind(*i),
            Bind::S(s) => q.bind(s.as_str()),
        };
    }
    q
}

pub fn parse_time(s: &str) -> Result<i64, ApiError> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(s, &fmt)
        .map(|t| (t.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| bad(format!("invalid time {s:?}: use RFC 3339 or YYYY-MM-DD HH:MM:SS")))
}

fn typed(col: Col, key: &str, v: &str) -> Result<Bind, ApiError> {
    match col {
        Col::Text(_) | Col::Keyword(_) => Ok(Bind::S(v.to_string())),
        Col::Int(_) => v.parse().map(Bind::I).map_err(|_| bad(format!("{key} must be a number, not {v:?}"))),
        Col::Time(_) => parse_time(v).map(Bind::I),
        Col::Flag(_) => match v {
            "true" | "1" => Ok(Bind::I(1)),
            "false" | "0" => Ok(Bind::I(0)),
            _ => Err(bad(format!("{key} must be true or false"))),
        },
    }
}

fn column(col: Col) -> &'static str {
    match col {
        Col::Text(c) | Col::Keyword(c) | Col::Int(c) | Col::Time(c) | Col::Flag(c) => c,
    }
}

/// Turns the terms of `q` into SQL with the endpoint's key map. Keys in `skip` are left for the
/// handler to interpret.
pub fn to_sql(q: &Query, keys: &[(&str, Col)], skip: &[&str], sql: &mut Sql) -> Result<(), ApiError> {
    for (k, cond) in &q.terms {
        if skip.contains(&k.as_str()) {
            continue;
        }
        let &(_, col) = keys.iter().find(|(name, _)| name == k).ok_or_else(|| {
            let known: Vec<&str> = keys.iter().map(|(n, _)| *n).chain(skip.iter().copied()).collect();
            bad(format!("unknown query key {k:?}; this list takes {}", known.join(", ")))
        })?;
        let c = column(col);
        if matches!(col, Col::Keyword(_)) && !matches!(cond, Cond::Exact(_)) {
            return Err(bad(format!("{k} takes an exact value only")));
        }
        match cond {
            Cond::Exact(v) => {
                let b = typed(col, k, v)?;
                sql.push(&format!("{c} = ?"), b)
            }
            Cond::Fuzzy(v) => match col {
                Col::Text(_) => sql.push(
                    &format!("lower({c}) LIKE ? ESCAPE '\\'"),
                    Bind::S(format!("%{}%", crate::projects::escape_like(&v.to_lowercase()))),
                ),
                _ => return Err(bad(format!("{k} does not support fuzzy matching"))),
            },
            Cond::Range(a, b) => {
                if matches!(col, Col::Text(_) | Col::Flag(_)) {
                    return Err(bad(format!("{k} does not take a range")));
                }
                if let Some(a) = a {
                    let v = typed(col, k, a)?;
                    sql.push(&format!("{c} >= ?"), v);
                }
                if let Some(b) = b {
                    let v = typed(col, k, b)?;
                    sql.push(&format!("{c} <= ?"), v);
                }
            }
            Cond::Any(vals) => {
                let mut parts = Vec::new();
                for v in vals {
                    let b = typed(col, k, v)?;
                    sql.binds.push(b);
                    parts.push(format!("${}", sql.next));
                    sql.next += 1;
                }
                sql.clauses.push(format!("{c} IN ({})", parts.join(", ")));
            }
        }
    }
    Ok(())
}

/// `ORDER BY` from `sort` (or `default` when absent), with `tiebreak` appended for a stable
/// order across pages.
pub fn order_by(
    sort: Option<&str>,
    keys: &[(&str, &str)],
    default: &str,
    tiebreak: &str,
) -> Result<String, ApiError> {
    let Some(sort) = sort.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(format!(" ORDER BY {default}, {tiebreak}"));
    };
    let mut parts = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for item in sort.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        // Each key at most once, so a sort never has more terms than the list has keys.
        if seen.len() >= keys.len() {
            return Err(bad(format!("sort has too many keys; this list sorts by at most {}", keys.len())));
        }
        let (desc, key) = match item.strip_prefix('-') {
            Some(k) => (true, k),
            None => (false, item),
        };
        let col = keys.iter().find(|(k, _)| *k == key).map(|(_, c)| *c).ok_or_else(|| {
            bad(format!(
                "cannot sort by {key:?}; this list sorts by {}",
                keys.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            ))
        })?;
        if seen.contains(&key) {
            return Err(bad(format!("sort names {key:?} twice")));
        }
        seen.push(key);
        parts.push(format!("{col}{}", if desc { " DESC" } else { "" }));
    }
    if parts.is_empty() {
        return Err(bad(format!("sort {sort:?} names no key")));
    }
    Ok(format!(" ORDER BY {}, {tiebreak}", parts.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for bad in ["novalue", "=x", "a=[1 2]", "a=[~]", "a={}", "a=[1~2", "a={x"] {
            assert!(Query::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sql_is_bound_and_typed() {
        let keys = [
            ("name", Col::Text("r.name")),
            ("id", Col::Int("r.id")),
            ("t", Col::Time("r.t")),
            ("public", Col::Flag("p.public")),
        ];
        let mut sql = Sql::starting_at(3);
        let q = Query::parse("name=~A_b,id={1 2},t=[0~2026-01-01T00:00:00Z],public=true").unwrap();
        to_sql(&q, &keys, &[], &mut sql).unwrap();
        assert_eq!(
            sql.clauses,
            [
                "lower(r.name) LIKE $3 ESCAPE '\\'",
                "r.id IN ($4, $5)",
                "r.t >= $6",
                "r.t <= $7",
                "p.public = $8"
            ]
        );
        assert_eq!(sql.binds[0], Bind::S("%a\\_b%".into()));
        assert_eq!(sql.binds[4], Bind::I(1_767_225_600_000));
        assert_eq!(sql.next_param(), 9);
        for bad in ["color=red", "id=x", "id=~1", "name=[a~b]", "public=maybe", "t=[x~]"] {
            let r = to_sql(&Query::parse(bad).unwrap(), &keys, &[], &mut Sql::starting_at(1));
            assert!(r.is_err(), "{bad}");
        }
        assert!(to_sql(&Query::parse("tags=x").unwrap(), &keys, &["tags"], &mut Sql::starting_at(1)).is_ok());
    }

    #[test]
    fn sorting() {
        let keys = [("name", "r.name"), ("creation_time", "r.created_at")];
        assert_eq!(order_by(None, &keys, "r.name", "r.id").unwrap(), " ORDER BY r.name, r.id");
        assert_eq!(
            order_by(Some("-creation_time,name"), &keys, "r.name", "r.id").unwrap(),
            " ORDER BY r.created_at DESC, r.name, r.id"
        );
        assert!(order_by(Some("size; DROP TABLE x"), &keys, "r.name", "r.id").is_err());
        for bad in [",", " , ,", "-", "name,name", "name,-name"] {
            assert!(order_by(Some(bad), &keys, "r.name", "r.id").is_err(), "{bad}");
        }
        let many = vec!["name"; 5000].join(",");
        assert!(order_by(Some(&many), &keys, "r.name", "r.id").is_err());
    }
}
