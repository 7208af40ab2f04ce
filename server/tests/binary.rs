//! The `berth` binary as an operator runs it: bad configuration, `migrate`, serving and
//! graceful shutdown on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Kills the server when a test ends, also when it panics.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Reap {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Reap {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

fn berth() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_berth"));
    // Do not pick up a developer's environment.
    for (k, _) in std::env::vars() {
        if k.starts_with("BERTH_") {
            c.env_remove(k);
        }
    }
    c
}

#[test]
fn bad_config_exits_2_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("BERTH_DATABASE__URL", "mysql://x", "database.url"),
        ("BERTH_LISTEN", "not-an-address", "listen"),
        ("BERTH_SESSION__TIMEOUT", "soon", "session.timeout"),
        ("BERTH_LOG__FORMAT", "xml", "log.format"),
        ("BERTH_ADMIN__INITIAL_PASSWORD", "weak", "admin.initial_password"),
    ];
    for (var, value, key) in cases {
        let out = berth().current_dir(dir.path()).env(var, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with(&format!("configuration error: {key}: ")), "{err}");
    }
    std::fs::write(dir.path().join("bad.toml"), "[database\nurl=").unwrap();
    let out = berth().current_dir(dir.path()).args(["--config", "bad.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = berth().current_dir(dir.path()).args(["--config", "missing.toml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--config"));
}

#[test]
fn migrate_then_serve_then_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let out = berth().current_dir(dir.path()).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("data/berth.db").exists());

    let mut child = Reap(
        berth()
            .current_dir(dir.path())
            .env("BERTH_LISTEN", "127.0.0.1:0")
            .env("BERTH_LOG__FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("berth is running at http://127.0.0.1:8080"), "{first}");
    let addr = first.split("listening on ").nth(1).unwrap().trim_end_matches(')').to_string();
    let second = lines.next().unwrap().unwrap();
    assert!(second.contains("admin / Harbor12345"), "{second}");

    // A raw HTTP request against the real listener.
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET /api/v2.0/ping HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.ends_with("Pong"), "{resp}");

    // SIGTERM: graceful stop with exit code 0.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serves_https_with_a_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let ok = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args(["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(ok.success());
    let mut child = Reap(
        berth()
            .current_dir(dir.path())
            .env("BERTH_LISTEN", "127.0.0.1:0")
            .env("BERTH_EXTERNAL_URL", "https://127.0.0.1:8443")
            .env("BERTH_TLS__CERT", &cert)
            .env("BERTH_TLS__KEY", &key)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let first = BufReader::new(child.stdout.take().unwrap()).lines().next().unwrap().unwrap();
    let addr = first.split("listening on ").nth(1).unwrap().trim_end_matches(')').to_string();
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&cert)
        .arg(format!("https://{addr}/api/v2.0/ping"))
        .output()
        .unwrap();
    drop(child);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Pong");
}

#[test]
fn gc_subcommand_reports_as_json_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let out = berth().current_dir(dir.path()).arg("migrate").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = berth().current_dir(dir.path()).args(["gc", "--dry-run", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(v["status"], "success");
    assert_eq!(v["report"]["dry_run"], true);
    assert_eq!(v["report"]["bytes"], 0);
    // Human output names the run and where its log is.
    let out = berth().current_dir(dir.path()).args(["gc", "--window", "0s"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("gc 2 success: freed 0 bytes"), "{text}");
    assert!(text.contains("/api/v2.0/system/gc/2/log"), "{text}");
    // A bad duration is a usage error, not a crash.
    let out = berth().current_dir(dir.path()).args(["gc", "--window", "soon"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
