//! `cargo run -p xtask -- site`: builds the portal's browser bundle without any downloaded
//! tool: compiles `frontend` to wasm32, runs wasm-bindgen (as a library pinned to the same
//! version as the `wasm-bindgen` crate, so the two always match) and copies the CSS and icons
//! into `<target>/site/pkg`, where the server serves them from.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

const OUTPUT_NAME: &str = "berth";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("site") => site(),
        _ => bail!("usage: cargo run -p xtask -- site"),
    }
}

/// The workspace root. `cargo run` sets `CARGO_MANIFEST_DIR` at run time; that one wins over
/// the compile-time value, which is stale when a shared target directory holds an xtask built
/// in another clone (cargo does not rebuild a package that only moved).
fn workspace_root() -> PathBuf {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    Path::new(&dir).parent().expect("workspace root").to_path_buf()
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

fn site() -> Result<()> {
    let root = workspace_root();
    let target = target_dir(&root);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "-p",
            "frontend",
            "--lib",
            "--target",
            "wasm32-unknown-unknown",
            "--profile",
            "wasm-release",
        ])
        .status()
        .context("running cargo build for the wasm bundle")?;
    if !status.success() {
        bail!("building the wasm bundle failed");
    }
    let wasm = target.join("wasm32-unknown-unknown/wasm-release/frontend.wasm");
    let pkg = target.join("site/pkg");
    std::fs::create_dir_all(&pkg)?;
    let mut bindgen = wasm_bindgen_cli_support::Bindgen::new();
    bindgen
        .input_path(&wasm)
        .web(true)?
        .out_name(OUTPUT_NAME)
        .remove_name_section(true)
        .remove_producers_section(true)
        .keep_debug(false)
        .typescript(false)
        .generate(&pkg)
        .context("wasm-bindgen")?;
    // wasm-bindgen names the module <name>_bg.wasm; the page asks for <name>.wasm because
    // LEPTOS_OUTPUT_NAME is set (see .cargo/config.toml).
    std::fs::rename(pkg.join(format!("{OUTPUT_NAME}_bg.wasm")), pkg.join(format!("{OUTPUT_NAME}.wasm")))?;
    let js_path = pkg.join(format!("{OUTPUT_NAME}.js"));
    let js = std::fs::read_to_string(&js_path)?;
    std::fs::write(&js_path, js.replace(&format!("{OUTPUT_NAME}_bg.wasm"), &format!("{OUTPUT_NAME}.wasm")))?;

    std::fs::copy(root.join("style/main.css"), pkg.join(format!("{OUTPUT_NAME}.css")))?;
    std::fs::copy(root.join("style/favicon.svg"), pkg.join("favicon.svg"))?;
    for name in [format!("{OUTPUT_NAME}.wasm"), format!("{OUTPUT_NAME}.js"), format!("{OUTPUT_NAME}.css")] {
        gzip(&pkg.join(&name))?;
    }
    let size = std::fs::metadata(pkg.join(format!("{OUTPUT_NAME}.wasm")))?.len();
    let gz = std::fs::metadata(pkg.join(format!("{OUTPUT_NAME}.wasm.gz")))?.len();
    println!("site built in {}: wasm {} KiB ({} KiB gzipped)", pkg.display(), size / 1024, gz / 1024);
    Ok(())
}

/// Writes `<file>.gz` next to the file (served by the server when the client accepts gzip).
fn gzip(path: &Path) -> Result<()> {
    use std::io::Write;
    let data = std::fs::read(path)?;
    let out = std::fs::File::create(
        path.with_extension(format!("{}.gz", path.extension().and_then(|e| e.to_str()).unwrap_or(""))),
    )?;
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::best());
    enc.write_all(&data)?;
    enc.finish()?.sync_all()?;
    Ok(())
}
