// sqlx::migrate! embeds the migration folders at compile time; without this, new migration
// files would not trigger a rebuild.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
