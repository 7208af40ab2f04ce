//! The SQLite and PostgreSQL migrations describe the same schema: both are applied (SQLite in a
//! temporary file, PostgreSQL in a fresh database that is dropped afterwards) and compared
//! table by table — columns (name, nullability, type family), primary keys, and indexes and
//! unique constraints by their column lists. A column, index or constraint added to one
//! database's migrations only fails this test with the difference.

use std::collections::{BTreeMap, BTreeSet};

use server::config::DatabaseConfig;
use server::db::Db;
use sqlx::Row;

/// A column: nullable, type family.
type Column = (bool, &'static str);

/// An index or unique constraint: unique, key columns (`<expr>` for an expression), partial.
type Index = (bool, Vec<String>, bool);

#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    columns: BTreeMap<String, Column>,
    primary_key: Vec<String>,
    indexes: BTreeSet<Index>,
}

type Schema = BTreeMap<String, Table>;

/// The type family of a declared (SQLite) or reported (PostgreSQL) column type.
fn family(declared: &str) -> &'static str {
    let t = declared.to_ascii_lowercase();
    if t.contains("int") || t.contains("serial") {
        "integer"
    } else if t.contains("char") || t.contains("text") || t.contains("clob") {
        "text"
    } else if t.contains("blob") || t.contains("bytea") {
        "blob"
    } else if t.contains("bool") {
        "bool"
    } else if t.contains("timestamp") || t.contains("date") || t.contains("time") {
        "timestamp"
    } else if t.contains("real") || t.contains("double") || t.contains("float") || t.contains("numeric") {
        "real"
    } else {
        panic!("unknown column type {declared:?}: teach tests/schema.rs its family")
    }
}

async fn sqlite_schema(db: &Db) -> Schema {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for t in tables {
        let mut table = Table::default();
        let cols =
            sqlx::query("SELECT name, type, \"notnull\" AS nn, pk FROM pragma_table_info($1) ORDER BY cid")
                .bind(&t)
                .fetch_all(&db.pool)
                .await
                .unwrap();
        let mut pk: Vec<(i64, String)> = vec![];
        for c in &cols {
            let name: String = c.get("name");
            let pk_pos: i64 = c.get("pk");
            let not_null: i64 = c.get("nn");
            if pk_pos > 0 {
                pk.push((pk_pos, name.clone()));
            }
            // SQLite lets a primary key column hold NULL unless declared NOT NULL; PostgreSQL
            // never does. A key column counts as NOT NULL on both.
            let nullable = not_null == 0 && pk_pos == 0;
            let ty: String = c.get("type");
            table.columns.insert(name, (nullable, family(&ty)));
        }
        pk.sort();
        table.primary_key = pk.into_iter().map(|(_, n)| n).collect();
        let indexes = sqlx::query(
            "SELECT name, \"unique\" AS uq, origin, partial FROM pragma_index_list($1) WHERE origin <> 'pk'",
        )
        .bind(&t)
        .fetch_all(&db.pool)
        .await
        .unwrap();
        for i in &indexes {
            let name: String = i.get("name");
            let key: Vec<String> =
                sqlx::query("SELECT name FROM pragma_index_xinfo($1) WHERE key = 1 ORDER BY seqno")
                    .bind(&name)
                    .fetch_all(&db.pool)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get::<Option<String>, _>("name").unwrap_or_else(|| "<expr>".into()))
                    .collect();
            let unique: i64 = i.get("uq");
            let partial: i64 = i.get("partial");
            table.indexes.insert((unique != 0, key, partial != 0));
        }
        schema.insert(t, table);
    }
    schema
}

async fn postgres_schema(db: &Db) -> Schema {
    let mut schema = Schema::new();
    let cols = sqlx::query(
        "SELECT c.table_name::text AS t, c.column_name::text AS name, c.is_nullable::text AS nullable, \
         c.data_type::text AS ty FROM information_schema.columns c JOIN information_schema.tables tb \
         ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name \
         WHERE c.table_schema = 'public' AND tb.table_type = 'BASE TABLE' AND c.table_name <> '_sqlx_migrations' \
         ORDER BY c.table_name, c.ordinal_position",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    for c in &cols {
        let t: String = c.get("t");
        let nullable: String = c.get("nullable");
        let ty: String = c.get("ty");
        schema.entry(t).or_default().columns.insert(c.get("name"), (nullable == "YES", family(&ty)));
    }
    // Every index, including those behind primary keys and unique constraints; key columns in
    // order, 0 standing for an expression.
    let indexes = sqlx::query(
        "SELECT t.relname::text AS t, ix.indisprimary AS is_pk, ix.indisunique AS is_unique, \
         ix.indpred IS NOT NULL AS is_partial, \
         array_to_string(ARRAY(SELECT COALESCE(a.attname::text, '<expr>') \
            FROM unnest(ix.indkey[0:ix.indnkeyatts - 1]) WITH ORDINALITY k(attnum, ord) \
            LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum AND k.attnum <> 0 \
            ORDER BY k.ord), ',') AS cols \
         FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = 'public' AND t.relname <> '_sqlx_migrations'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    for i in &indexes {
        let t: String = i.get("t");
        let cols: String = i.get("cols");
        let key: Vec<String> = cols.split(',').map(str::to_string).collect();
        let table = schema.entry(t).or_default();
        if i.get::<bool, _>("is_pk") {
            table.primary_key = key;
        } else {
            table.indexes.insert((i.get("is_unique"), key, i.get("is_partial")));
        }
    }
    schema
}

/// The differences between two schemas, one line each (empty when they agree).
fn differences(sqlite: &Schema, postgres: &Schema) -> Vec<String> {
    let mut out = vec![];
    let names: BTreeSet<&String> = sqlite.keys().chain(postgres.keys()).collect();
    for name in names {
        let (Some(s), Some(p)) = (sqlite.get(name), postgres.get(name)) else {
            let only = if sqlite.contains_key(name) { "SQLite" } else { "PostgreSQL" };
            out.push(format!("table {name} exists only on {only}"));
            continue;
        };
        let cols: BTreeSet<&String> = s.columns.keys().chain(p.columns.keys()).collect();
        for c in cols {
            match (s.columns.get(c), p.columns.get(c)) {
                (Some(a), Some(b)) if a == b => {}
                (a, b) => out.push(format!(
                    "{name}.{c}: SQLite {a:?}, PostgreSQL {b:?} (nullable, type family; None = absent)"
                )),
            }
        }
        if s.primary_key != p.primary_key {
            out.push(format!(
                "{name} primary key: SQLite {:?}, PostgreSQL {:?}",
                s.primary_key, p.primary_key
            ));
        }
        for i in s.indexes.symmetric_difference(&p.indexes) {
            let only = if s.indexes.contains(i) { "SQLite" } else { "PostgreSQL" };
            out.push(format!("{name}: index (unique, columns, partial) {i:?} exists only on {only}"));
        }
    }
    out
}

fn config(url: String) -> DatabaseConfig {
    DatabaseConfig { url, ..DatabaseConfig::default() }
}

#[tokio::test]
async fn sqlite_and_postgres_migrations_agree() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Db::connect(&config(format!("sqlite://{}/schema.db", dir.path().display()))).await.unwrap();
    sqlite.migrate().await.unwrap();
    // Dropped when the test ends, passed or failed.
    let pg = crate::common::PgDb::create().await;
    let postgres = Db::connect(&config(pg.url.clone())).await.unwrap();
    postgres.migrate().await.unwrap();

    let (s, p) = (sqlite_schema(&sqlite).await, postgres_schema(&postgres).await);
    postgres.pool.close().await;

    // The comparison sees what it must: the tables and the shapes of a known one.
    assert!(s.len() >= 20, "{:?}", s.keys());
    let users = &s["users"];
    assert_eq!(users.primary_key, ["id"]);
    assert_eq!(users.columns["username"], (false, "text"));
    assert!(users.indexes.contains(&(true, vec!["<expr>".to_string()], false)), "{:?}", users.indexes);
    assert!(s["jobs"].indexes.iter().any(|i| i.0 && i.2), "the partial unique index of jobs");
    assert_eq!(s["repository_blobs"].primary_key.len(), 2);

    let diff = differences(&s, &p);
    assert!(diff.is_empty(), "the SQLite and PostgreSQL migrations differ:\n{}", diff.join("\n"));
}

/// The comparison itself reports a column, a key and an index present on one side only.
#[test]
fn differences_are_reported() {
    let table = |cols: &[(&str, Column)], pk: &[&str], idx: &[Index]| Table {
        columns: cols.iter().map(|(n, c)| (n.to_string(), *c)).collect(),
        primary_key: pk.iter().map(|s| s.to_string()).collect(),
        indexes: idx.iter().cloned().collect(),
    };
    let a: Schema = [("t".to_string(), table(&[("id", (false, "integer"))], &["id"], &[]))].into();
    assert!(differences(&a, &a).is_empty());
    let b: Schema = [(
        "t".to_string(),
        table(
            &[("id", (false, "integer")), ("x", (true, "text"))],
            &["x"],
            &[(true, vec!["x".into()], false)],
        ),
    )]
    .into();
    let d = differences(&a, &b);
    assert_eq!(d.len(), 3, "{d:?}");
    assert!(d[0].starts_with("t.x:"), "{d:?}");
    assert_eq!(differences(&a, &Schema::new()), ["table t exists only on SQLite"]);
}
