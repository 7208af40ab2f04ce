//! The SQL statement builder: statements and filters with bound values, placeholders numbered
//! by the builder.
//!
//! Callers write `?` for each value; `Stmt` numbers them `$1, $2, …` in the order they appear
//! (both sqlx drivers accept `$n`, so one text runs on SQLite and PostgreSQL). **No caller
//! passes a placeholder number.** A `Sql` is a list of conditions, each with its own `?`s and
//! values, unnumbered until a `Stmt` takes it; the same `Sql` can therefore go into a count and
//! a list statement.
//!
//! Harbor's list filters map onto it here: a filter term (`Cond`) on a key becomes a condition
//! on the column the endpoint maps the key to (`Col`); sort keys (`SortKey`) become `ORDER BY`.
//! Values are always bound, never spliced into SQL. The HTTP syntax of `q` and `sort` is parsed
//! in `api::query`. Errors are `QueryError` (the REST surface answers them with 400).

use sqlx::any::AnyArguments;
use sqlx::Any;

/// A filter or sort the list does not support; the message names the key (→ 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

fn bad(msg: impl Into<String>) -> QueryError {
    QueryError(msg.into())
}

/// A bound value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    I(i64),
    S(String),
    /// An integer or NULL.
    OptI(Option<i64>),
}

impl From<Option<i64>> for Bind {
    fn from(v: Option<i64>) -> Self {
        Bind::OptI(v)
    }
}

impl From<i64> for Bind {
    fn from(v: i64) -> Self {
        Bind::I(v)
    }
}

impl From<String> for Bind {
    fn from(v: String) -> Self {
        Bind::S(v)
    }
}

impl From<&str> for Bind {
    fn from(v: &str) -> Self {
        Bind::S(v.to_string())
    }
}

impl From<&String> for Bind {
    fn from(v: &String) -> Self {
        Bind::S(v.clone())
    }
}

/// SQL conditions (joined with `AND`), `?` standing for each of their values in order.
#[derive(Debug, Clone, Default)]
pub struct Sql {
    pub clauses: Vec<String>,
    pub binds: Vec<Bind>,
}

impl Sql {
    pub fn new() -> Sql {
        Sql::default()
    }

    /// Adds a condition with one `?` for `b`.
    pub fn push(&mut self, clause: &str, b: Bind) {
        self.push_all(clause, [b]);
    }

    /// Adds a condition with one `?` for each of `binds`, in order.
    pub fn push_all(&mut self, clause: &str, binds: impl IntoIterator<Item = Bind>) {
        self.clauses.push(clause.to_string());
        self.binds.extend(binds);
        debug_assert_eq!(
            self.clauses.iter().map(|c| count_marks(c)).sum::<usize>(),
            self.binds.len(),
            "a `?` for each value: {clause}"
        );
    }

    /// Adds a condition without values.
    pub fn push_raw(&mut self, clause: &str) {
        self.push_all(clause, []);
    }

    /// Adds `column IN (?, ?, …)` for `values` (`FALSE` when there are none).
    pub fn push_in(&mut self, column: &str, values: impl IntoIterator<Item = Bind>) {
        let values: Vec<Bind> = values.into_iter().collect();
        if values.is_empty() {
            self.push_raw("1 = 0");
        } else {
            self.push_all(&format!("{column} IN ({})", marks(values.len())), values);
        }
    }

    /// Adds the conditions of `other`.
    pub fn extend(&mut self, other: Sql) {
        self.clauses.extend(other.clauses);
        self.binds.extend(other.binds);
    }

    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }

    /// Adds a condition for each term of a filter, with the endpoint's key map. Keys in `skip`
    /// are left for the caller to interpret; any other unknown key is an error naming the keys
    /// the list takes.
    pub fn filter(
        &mut self,
        terms: &[(String, Cond)],
        keys: &[(&str, Col)],
        skip: &[&str],
    ) -> Result<(), QueryError> {
        for (k, cond) in terms {
            if skip.contains(&k.as_str()) {
                continue;
            }
            let &(_, col) = keys.iter().find(|(name, _)| name == k).ok_or_else(|| {
                let known: Vec<&str> = keys.iter().map(|(n, _)| *n).chain(skip.iter().copied()).collect();
                bad(format!("unknown query key {k:?}; this list takes {}", known.join(", ")))
            })?;
            let c = col.column();
            if matches!(col, Col::Keyword(_)) && !matches!(cond, Cond::Exact(_)) {
                return Err(bad(format!("{k} takes an exact value only")));
            }
            match cond {
                Cond::Exact(v) => {
                    let b = typed(col, k, v)?;
                    self.push(&format!("{c} = ?"), b)
                }
                Cond::Fuzzy(v) => match col {
                    Col::Text(_) => self.push(&format!("lower({c}) LIKE ? ESCAPE '\\'"), contains(v)),
                    _ => return Err(bad(format!("{k} does not support fuzzy matching"))),
                },
                Cond::Range(a, b) => {
                    if matches!(col, Col::Text(_) | Col::Flag(_)) {
                        return Err(bad(format!("{k} does not take a range")));
                    }
                    if let Some(a) = a {
                        let v = typed(col, k, a)?;
                        self.push(&format!("{c} >= ?"), v);
                    }
                    if let Some(b) = b {
                        let v = typed(col, k, b)?;
                        self.push(&format!("{c} <= ?"), v);
                    }
                }
                Cond::Any(vals) => {
                    let binds = vals.iter().map(|v| typed(col, k, v)).collect::<Result<Vec<_>, _>>()?;
                    self.push_in(c, binds);
                }
                Cond::All(_) => return Err(bad(format!("{k} does not take a (…) list"))),
            }
        }
        Ok(())
    }
}

/// The bind value of a case-insensitive substring match (`lower(col) LIKE ? ESCAPE '\'`).
pub fn contains(s: &str) -> Bind {
    Bind::S(format!("%{}%", escape_like(&s.to_lowercase())))
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `?, ?, …`: `n` marks.
fn marks(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The `?` marks outside single-quoted literals.
fn count_marks(sql: &str) -> usize {
    let mut quoted = false;
    sql.chars()
        .filter(|&c| {
            if c == '\'' {
                quoted = !quoted;
            }
            c == '?' && !quoted
        })
        .count()
}

/// A statement being built: SQL text with its placeholders numbered and its values in order.
#[derive(Debug, Clone, Default)]
pub struct Stmt {
    sql: String,
    binds: Vec<Bind>,
    /// Placeholders numbered so far.
    marks: usize,
}

impl Stmt {
    /// A statement starting with `sql` (which has no placeholders).
    pub fn new(sql: &str) -> Stmt {
        let mut s = Stmt::default();
        s.push(sql);
        s
    }

    /// Appends text; each `?` outside a quoted literal becomes the next `$n`. Its values are
    /// added with `bind`, in the same order. Text is appended in pieces that do not split a
    /// quoted literal.
    pub fn push(&mut self, sql: &str) -> &mut Stmt {
        let mut quoted = false;
        for c in sql.chars() {
            if c == '\'' {
                quoted = !quoted;
            }
            if c == '?' && !quoted {
                self.marks += 1;
                self.sql.push_str(&format!("${}", self.marks));
            } else {
                self.sql.push(c);
            }
        }
        self
    }

    /// The value of the next `?`.
    pub fn bind(&mut self, b: impl Into<Bind>) -> &mut Stmt {
        self.binds.push(b.into());
        self
    }

    /// Appends text with one `?` and its value.
    pub fn push_bind(&mut self, sql: &str, b: impl Into<Bind>) -> &mut Stmt {
        self.push(sql).bind(b)
    }

    /// Appends `?, ?, …` for `values`.
    pub fn push_list(&mut self, values: impl IntoIterator<Item = impl Into<Bind>>) -> &mut Stmt {
        for (i, v) in values.into_iter().enumerate() {
            self.push(if i == 0 { "?" } else { ", ?" }).bind(v);
        }
        self
    }

    /// Appends ` AND c` for each condition of `conds`.
    pub fn and(&mut self, conds: &Sql) -> &mut Stmt {
        for c in &conds.clauses {
            self.push(" AND ").push(c);
        }
        self.binds.extend(conds.binds.iter().cloned());
        self
    }

    /// Appends ` WHERE c1 AND c2 …` (nothing when `conds` is empty).
    pub fn where_(&mut self, conds: &Sql) -> &mut Stmt {
        for (i, c) in conds.clauses.iter().enumerate() {
            self.push(if i == 0 { " WHERE " } else { " AND " }).push(c);
        }
        self.binds.extend(conds.binds.iter().cloned());
        self
    }

    /// The SQL text, placeholders numbered.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    pub fn binds(&self) -> &[Bind] {
        &self.binds
    }

    fn check(&self) {
        debug_assert_eq!(self.marks, self.binds.len(), "a value for each `?`: {}", self.sql);
    }

    /// The bound values, in order, as sqlx arguments.
    fn args(&self) -> AnyArguments<'_> {
        use sqlx::Arguments;
        self.check();
        let mut args = AnyArguments::default();
        for b in &self.binds {
            let added = match b {
                Bind::I(i) => args.add(*i),
                Bind::S(s) => args.add(s.as_str()),
                Bind::OptI(i) => args.add(*i),
            };
            // Integers and strings always encode.
            debug_assert!(added.is_ok());
        }
        args
    }

    /// The statement as an sqlx query.
    pub fn query(&self) -> sqlx::query::Query<'_, Any, AnyArguments<'_>> {
        sqlx::query_with(&self.sql, self.args())
    }

    /// The statement as an sqlx query returning `T` rows.
    pub fn query_as<T>(&self) -> sqlx::query::QueryAs<'_, Any, T, AnyArguments<'_>>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        sqlx::query_as_with(&self.sql, self.args())
    }

    /// The statement as an sqlx query returning one column of type `T`.
    pub fn query_scalar<T>(&self) -> sqlx::query::QueryScalar<'_, Any, T, AnyArguments<'_>>
    where
        (T,): for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        sqlx::query_scalar_with(&self.sql, self.args())
    }
}

/// A filter term's condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    /// Equal to the value.
    Exact(String),
    /// Contains the value (case-insensitive for text).
    Fuzzy(String),
    /// Within the range; either end may be open.
    Range(Option<String>, Option<String>),
    /// Equal to any of the values.
    Any(Vec<String>),
    /// All of the values at once (Harbor's `(a b)` "and" list; only list-valued keys such as
    /// an artifact's `labels` take it).
    All(Vec<String>),
}

/// How a filter key maps to SQL.
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

impl Col {
    fn column(self) -> &'static str {
        match self {
            Col::Text(c) | Col::Keyword(c) | Col::Int(c) | Col::Time(c) | Col::Flag(c) => c,
        }
    }
}

/// Milliseconds from RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) or a number of milliseconds.
pub fn parse_time(s: &str) -> Result<i64, QueryError> {
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

fn typed(col: Col, key: &str, v: &str) -> Result<Bind, QueryError> {
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

/// One key of a sort, ascending unless `desc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub key: String,
    pub desc: bool,
}

/// ` ORDER BY …` from `sort` (or `default` when empty), with `tiebreak` appended for a stable
/// order across pages. `keys` maps each sortable key to its column; each key at most once.
pub fn order_by(
    sort: &[SortKey],
    keys: &[(&str, &str)],
    default: &str,
    tiebreak: &str,
) -> Result<String, QueryError> {
    if sort.is_empty() {
        return Ok(format!(" ORDER BY {default}, {tiebreak}"));
    }
    // Each key at most once, so a sort never has more terms than the list has keys.
    if sort.len() > keys.len() {
        return Err(bad(format!("sort has too many keys; this list sorts by at most {}", keys.len())));
    }
    let mut parts = Vec::new();
    for (i, SortKey { key, desc }) in sort.iter().enumerate() {
        let col = keys.iter().find(|(k, _)| k == key).map(|(_, c)| *c).ok_or_else(|| {
            bad(format!(
                "cannot sort by {key:?}; this list sorts by {}",
                keys.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
            ))
        })?;
        if sort[..i].iter().any(|s| s.key == *key) {
            return Err(bad(format!("sort names {key:?} twice")));
        }
        parts.push(format!("{col}{}", if *desc { " DESC" } else { "" }));
    }
    Ok(format!(" ORDER BY {}, {tiebreak}", parts.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(t: &[(&str, Cond)]) -> Vec<(String, Cond)> {
        t.iter().map(|(k, c)| (k.to_string(), c.clone())).collect()
    }

    #[test]
    fn sql_is_bound_and_typed() {
        let keys = [
            ("name", Col::Text("r.name")),
            ("id", Col::Int("r.id")),
            ("t", Col::Time("r.t")),
            ("public", Col::Flag("p.public")),
        ];
        let mut sql = Sql::new();
        sql.push("r.project_id = ?", Bind::I(9));
        sql.push("r.x = ?", Bind::I(8));
        let q = terms(&[
            ("name", Cond::Fuzzy("A_b".into())),
            ("id", Cond::Any(vec!["1".into(), "2".into()])),
            ("t", Cond::Range(Some("0".into()), Some("2026-01-01T00:00:00Z".into()))),
            ("public", Cond::Exact("true".into())),
        ]);
        sql.filter(&q, &keys, &[]).unwrap();
        let mut stmt = Stmt::new("SELECT 1 FROM r");
        stmt.where_(&sql);
        assert_eq!(
            stmt.sql(),
            "SELECT 1 FROM r WHERE r.project_id = $1 AND r.x = $2 AND lower(r.name) LIKE $3 ESCAPE '\\' \
             AND r.id IN ($4, $5) AND r.t >= $6 AND r.t <= $7 AND p.public = $8"
        );
        assert_eq!(sql.binds[2], Bind::S("%a\\_b%".into()));
        assert_eq!(sql.binds[6], Bind::I(1_767_225_600_000));
        assert_eq!(stmt.binds().len(), 8);
        for bad in [
            ("color", Cond::Exact("red".into())),
            ("id", Cond::Exact("x".into())),
            ("id", Cond::Fuzzy("1".into())),
            ("name", Cond::Range(Some("a".into()), Some("b".into()))),
            ("public", Cond::Exact("maybe".into())),
            ("t", Cond::Range(Some("x".into()), None)),
        ] {
            let r = Sql::new().filter(&terms(std::slice::from_ref(&bad)), &keys, &[]);
            assert!(r.is_err(), "{bad:?}");
        }
        let tags = terms(&[("tags", Cond::Exact("x".into()))]);
        assert!(Sql::new().filter(&tags, &keys, &["tags"]).is_ok());
    }

    #[test]
    fn the_builder_numbers_placeholders() {
        let mut conds = Sql::new();
        conds.push_all("(a = ? OR b = ?)", [Bind::I(1), Bind::I(1)]);
        conds.push_in("c", ["x".into(), "y".into()]);
        conds.push_in("d", []);
        let mut s = Stmt::new("SELECT '?' FROM t WHERE e = ?");
        s.bind("v").and(&conds).push(" LIMIT ?").bind(5);
        assert_eq!(
            s.sql(),
            "SELECT '?' FROM t WHERE e = $1 AND (a = $2 OR b = $3) AND c IN ($4, $5) AND 1 = 0 LIMIT $6"
        );
        assert_eq!(s.binds().len(), 6);
        let mut l = Stmt::new("DELETE FROM t WHERE k IN (");
        l.push_list(["a", "b", "c"]).push(")");
        assert_eq!(l.sql(), "DELETE FROM t WHERE k IN ($1, $2, $3)");
        let mut empty = Stmt::new("SELECT 1");
        empty.where_(&Sql::new());
        assert_eq!(empty.sql(), "SELECT 1");
    }

    #[test]
    fn sorting() {
        let keys = [("name", "r.name"), ("creation_time", "r.created_at")];
        let s = |k: &str, desc| SortKey { key: k.into(), desc };
        assert_eq!(order_by(&[], &keys, "r.name", "r.id").unwrap(), " ORDER BY r.name, r.id");
        assert_eq!(
            order_by(&[s("creation_time", true), s("name", false)], &keys, "r.name", "r.id").unwrap(),
            " ORDER BY r.created_at DESC, r.name, r.id"
        );
        assert!(order_by(&[s("size; DROP TABLE x", false)], &keys, "r.name", "r.id").is_err());
        assert!(order_by(&[s("name", false), s("name", true)], &keys, "r.name", "r.id").is_err());
        assert!(order_by(&vec![s("name", false); 5000], &keys, "r.name", "r.id").is_err());
    }

    #[test]
    fn like_patterns_are_escaped() {
        assert_eq!(escape_like("a%b_c\\"), "a\\%b\\_c\\\\");
        assert_eq!(escape_like("a_b%c\\d"), "a\\_b\\%c\\\\d");
        assert_eq!(contains("Ab%"), Bind::S("%ab\\%%".into()));
    }
}
