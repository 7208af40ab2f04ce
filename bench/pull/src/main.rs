//! `berth-pull`: the benchmark's registry pull client.
//!
//! `bench/registry.sh` measures pulls with skopeo, but on this 2-CPU machine skopeo itself is the
//! bottleneck (it pulls no faster from nginx serving the files statically than from either
//! registry), so a pull by skopeo cannot tell two servers apart. This client does the same work a
//! pull must do — the registry auth flow (Bearer token service or Basic), the manifest by tag with
//! its digest checked, then every blob streamed to a file while it is hashed and its size and
//! digest verified — in the layout of skopeo's `dir:` transport, with SHA-NI hashing and
//! parallel blob downloads, so that the server, not the client, sets the pace.
//!
//! ```text
//! berth-pull [--creds USER:PASSWORD] http://127.0.0.1:5000 library/app v1 DEST_DIR
//! ```
//!
//! DEST_DIR must not exist. On success it prints one line: bytes, seconds and MB/s.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{anyhow, bail, ensure, Context, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::blocking::{Client, Response};
use reqwest::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::StatusCode;
use serde::Deserialize;
use sha2::{Digest as _, Sha256, Sha512};

/// What skopeo and docker accept for a manifest by tag.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json, \
    application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json";
/// Blob downloads running at once (skopeo's default is 6 too).
const PARALLEL: usize = 6;
const BUF: usize = 1 << 20;

struct Args {
    creds: Option<(String, String)>,
    base: String,
    name: String,
    reference: String,
    dest: PathBuf,
}

fn usage() -> anyhow::Error {
    anyhow!("usage: berth-pull [--creds USER:PASSWORD] BASE_URL NAME TAG_OR_DIGEST DEST_DIR")
}

fn parse_args() -> Result<Args> {
    let mut it = std::env::args().skip(1);
    let mut creds = None;
    let mut pos = Vec::new();
    while let Some(a) = it.next() {
        if a == "--creds" {
            let c = it.next().ok_or_else(usage)?;
            let (u, p) = c.split_once(':').ok_or_else(|| anyhow!("--creds must be USER:PASSWORD"))?;
            creds = Some((u.to_string(), p.to_string()));
        } else if a.starts_with("--") {
            return Err(usage());
        } else {
            pos.push(a);
        }
    }
    let [base, name, reference, dest]: [String; 4] = pos.try_into().map_err(|_| usage())?;
    Ok(Args { creds, base: base.trim_end_matches('/').to_string(), name, reference, dest: dest.into() })
}

/// The parameters of a `WWW-Authenticate: Bearer realm="…",service="…"` challenge.
fn challenge_params(h: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = h.trim();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().trim_start_matches(',').trim().to_ascii_lowercase();
        rest = &rest[eq + 1..];
        let value;
        if let Some(r) = rest.strip_prefix('"') {
            let end = r.find('"').unwrap_or(r.len());
            value = r[..end].to_string();
            rest = r.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        out.push((key, value));
        rest = rest.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// The `Authorization` header value for pulling `name`, after the registry's challenge.
fn authorize(client: &Client, a: &Args) -> Result<Option<String>> {
    let resp = client.get(format!("{}/v2/", a.base)).send().context("GET /v2/")?;
    if resp.status().is_success() {
        return Ok(None);
    }
    ensure!(resp.status() == StatusCode::UNAUTHORIZED, "GET /v2/ answered {}", resp.status());
    let basic = a.creds.as_ref().map(|(u, p)| format!("Basic {}", STANDARD.encode(format!("{u}:{p}"))));
    let challenge = resp
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| anyhow!("401 without WWW-Authenticate"))?
        .to_string();
    let (scheme, params) = challenge.split_once(' ').unwrap_or((&challenge, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return basic.map(Some).ok_or_else(|| anyhow!("the registry wants Basic credentials: give --creds"));
    }
    ensure!(scheme.eq_ignore_ascii_case("bearer"), "unknown auth scheme {scheme:?}");
    let params = challenge_params(params);
    let get = |k: &str| params.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let realm = get("realm").ok_or_else(|| anyhow!("Bearer challenge without realm"))?;
    let mut query = vec![("scope", format!("repository:{}:pull", a.name))];
    if let Some(service) = get("service") {
        query.push(("service", service));
    }
    let mut req = client.get(&realm).query(&query);
    if let Some(b) = &basic {
        req = req.header(AUTHORIZATION, b);
    }
    let resp = req.send().context("token request")?;
    ensure!(resp.status().is_success(), "token service answered {}", resp.status());
    #[derive(Deserialize)]
    struct Token {
        token: Option<String>,
        access_token: Option<String>,
    }
    let t: Token = serde_json::from_slice(&resp.bytes()?).context("token response")?;
    let token = t.token.or(t.access_token).ok_or_else(|| anyhow!("token response without a token"))?;
    Ok(Some(format!("Bearer {token}")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    digest: String,
    size: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    media_type: Option<String>,
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    manifests: Option<Vec<serde_json::Value>>,
}

enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    /// The hasher for digest `d` and its lowercase hex part, which names the blob's file (so a
    /// manifest's digest can never name a path outside the destination).
    fn for_digest(d: &str) -> Result<(Hasher, &str)> {
        let (hasher, hex, len) = match d.split_once(':') {
            Some(("sha256", hex)) => (Hasher::Sha256(Sha256::new()), hex, 64),
            Some(("sha512", hex)) => (Hasher::Sha512(Sha512::new()), hex, 128),
            _ => bail!("unsupported digest {d:?}"),
        };
        let lower_hex = hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ensure!(hex.len() == len && lower_hex, "invalid digest {d:?}");
        Ok((hasher, hex))
    }
    fn update(&mut self, b: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(b),
            Hasher::Sha512(h) => h.update(b),
        }
    }
    fn hex(self) -> String {
        match self {
            Hasher::Sha256(h) => hex::encode(h.finalize()),
            Hasher::Sha512(h) => hex::encode(h.finalize()),
        }
    }
}

fn send(client: &Client, url: &str, auth: &Option<String>, accept: Option<&str>) -> Result<Response> {
    let mut req = client.get(url);
    if let Some(a) = auth {
        req = req.header(AUTHORIZATION, a);
    }
    if let Some(a) = accept {
        req = req.header(ACCEPT, a);
    }
    let resp = req.send().with_context(|| format!("GET {url}"))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().unwrap_or_default();
        bail!("GET {url} answered {status}: {}", body.chars().take(300).collect::<String>());
    }
    Ok(resp)
}

/// Streams one blob into `dir/<hex>`, hashing as it writes; refuses a wrong size or digest.
fn fetch_blob(client: &Client, a: &Args, auth: &Option<String>, d: &Descriptor, dir: &Path) -> Result<u64> {
    let (mut hasher, want) = Hasher::for_digest(&d.digest)?;
    let path = dir.join(want);
    let mut resp = send(client, &format!("{}/v2/{}/blobs/{}", a.base, a.name, d.digest), auth, None)?;
    let mut file = File::create(&path).with_context(|| format!("create {}", path.display()))?;
    let mut buf = vec![0u8; BUF];
    let mut got = 0u64;
    loop {
        let n = resp.read(&mut buf).with_context(|| format!("reading blob {}", d.digest))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).with_context(|| format!("write {}", path.display()))?;
        got += n as u64;
        ensure!(got <= d.size, "blob {} is longer than its descriptor's {} bytes", d.digest, d.size);
    }
    ensure!(got == d.size, "blob {}: {got} bytes, the descriptor says {}", d.digest, d.size);
    let hex = hasher.hex();
    ensure!(hex == want, "blob {} arrived with digest {hex}", d.digest);
    Ok(got)
}

fn run(a: &Args) -> Result<u64> {
    let client = Client::builder().timeout(None).build()?;
    let auth = authorize(&client, a)?;
    let url = format!("{}/v2/{}/manifests/{}", a.base, a.name, a.reference);
    let resp = send(&client, &url, &auth, Some(MANIFEST_ACCEPT))?;
    let header_digest =
        resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = resp.bytes()?;
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&body)));
    if let Some(h) = header_digest {
        ensure!(h == digest, "manifest digest {digest}, but Docker-Content-Digest says {h}");
    }
    if a.reference.contains(':') {
        ensure!(a.reference == digest, "asked for {}, got a manifest with digest {digest}", a.reference);
    }
    let m: Manifest = serde_json::from_slice(&body).context("manifest JSON")?;
    ensure!(
        m.manifests.is_none(),
        "{} is an index ({}): give one platform's manifest digest",
        a.reference,
        m.media_type.as_deref().unwrap_or("no mediaType")
    );
    let config = m.config.ok_or_else(|| anyhow!("manifest without config"))?;

    std::fs::create_dir(&a.dest).with_context(|| format!("create {}", a.dest.display()))?;
    std::fs::write(a.dest.join("version"), "Directory Transport Version: 1.1\n")?;
    std::fs::write(a.dest.join("manifest.json"), &body)?;

    let mut blobs = m.layers;
    blobs.push(config);
    // A manifest may list one blob twice; it is one file, fetched once.
    let mut seen = std::collections::HashSet::new();
    blobs.retain(|d| seen.insert(d.digest.clone()));
    let next = AtomicUsize::new(0);
    let total = AtomicU64::new(body.len() as u64);
    let error = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..PARALLEL.min(blobs.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(d) = blobs.get(i) else { break };
                match fetch_blob(&client, a, &auth, d, &a.dest) {
                    Ok(n) => {
                        total.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) => {
                        error.lock().unwrap().get_or_insert(e);
                        break;
                    }
                }
            });
        }
    });
    match error.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(total.into_inner()),
    }
}

fn main() {
    let t0 = Instant::now();
    let result = parse_args().and_then(|a| run(&a));
    match result {
        Ok(bytes) => {
            let secs = t0.elapsed().as_secs_f64();
            println!("{bytes} bytes in {secs:.3} s: {:.1} MB/s", bytes as f64 / 1e6 / secs);
        }
        Err(e) => {
            eprintln!("berth-pull: {e:#}");
            std::process::exit(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_bearer_challenge() {
        let p = challenge_params(r#"realm="http://h:1/service/token",service="harbor-registry",scope="a,b""#);
        assert_eq!(
            p,
            vec![
                ("realm".into(), "http://h:1/service/token".into()),
                ("service".into(), "harbor-registry".into()),
                ("scope".into(), "a,b".into()),
            ]
        );
        assert_eq!(
            challenge_params("realm=x, service=y"),
            vec![("realm".into(), "x".into()), ("service".into(), "y".into())]
        );
    }

    #[test]
    fn digests_are_checked_by_algorithm() {
        assert!(Hasher::for_digest(&format!("sha256:{}", "0".repeat(64))).is_ok());
        assert!(Hasher::for_digest(&format!("sha512:{}", "0".repeat(128))).is_ok());
        assert!(Hasher::for_digest("sha256:abc").is_err());
        assert!(Hasher::for_digest(&format!("sha256:../{}", "0".repeat(61))).is_err());
        assert!(Hasher::for_digest(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(Hasher::for_digest("md5:00").is_err());
    }
}
