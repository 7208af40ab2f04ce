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

/// Starts `berth serve` in a fresh directory with extra environment; returns it and its address.
fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> (Reap, String) {
    let mut cmd = berth();
    cmd.current_dir(dir).env("BERTH_LISTEN", "127.0.0.1:0").stdout(Stdio::piped()).stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = Reap(cmd.spawn().unwrap());
    let first = BufReader::new(child.stdout.take().unwrap()).lines().next().unwrap().unwrap();
    let addr = first.split("listening on ").nth(1).unwrap().trim_end_matches(')').to_string();
    (child, addr)
}

/// One request on a fresh connection; the whole answer (the server closes).
fn request(addr: &str, head: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{head}").unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    String::from_utf8_lossy(&resp).into_owned()
}

/// Waits until the server closes `s` (end of stream or reset); returns what it sent and when.
fn wait_closed(s: &mut std::net::TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    use std::io::Read;
    let started = std::time::Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server kept the connection open ({e}) after {:?}", started.elapsed()),
        }
    }
    (got, started.elapsed())
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

const PING: &str = "GET /api/v2.0/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

// Issue 18: slowloris. Half-sent requests are closed after `http.header_read_timeout`, so is an
// idle keep-alive connection; a stalled body ends after `http.body_read_timeout`; beyond
// `http.max_connections` connections are answered 503 and closed at once (the server's file
// descriptors stay bounded), and normal requests keep working throughout.
#[test]
fn slow_clients_are_cut_off_and_extra_connections_refused() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = start(
        dir.path(),
        &[
            ("BERTH_HTTP__HEADER_READ_TIMEOUT", "2s"),
            ("BERTH_HTTP__BODY_READ_TIMEOUT", "2s"),
            ("BERTH_HTTP__MAX_CONNECTIONS", "100"),
        ],
    );
    assert!(request(&addr, PING).ends_with("Pong"));
    let fds_before = open_fds(child.id());

    // 1. 300 connections sending half a request head: 100 are held (the limit), the other 200
    //    are answered 503 and closed at once.
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..300 {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        let _ = write!(s, "GET /api/v2.0/ping HTTP/1.1\r\nHost: x\r\nX-Slow: ");
        held.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(open_fds(child.id()) < fds_before + 100 + 70, "fds grew to {}", open_fds(child.id()));
    let mut kept = Vec::new();
    for mut s in held {
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        let read = std::io::Read::read(&mut s, &mut buf);
        s.set_nonblocking(false).unwrap();
        match read {
            Ok(n) if n > 0 => {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                assert!(text.starts_with("HTTP/1.1 503"), "{text}");
                assert!(text.contains("\"UNAVAILABLE\""), "{text}");
                refused += 1;
            }
            Ok(_) => refused += 1,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => refused += 1,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => kept.push(s), // waiting for its head
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(kept.len(), 100, "refused {refused}");
    // 2. The held ones are closed once the header timeout passes (2 s, counted from accept).
    for mut s in kept {
        let (_, waited) = wait_closed(&mut s, Duration::from_secs(6));
        assert!(waited < Duration::from_secs(6));
    }
    // ... and a normal request succeeds again.
    assert!(request(&addr, PING).ends_with("Pong"));

    // 3. An idle keep-alive connection is closed after the same timeout.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(s, "GET /api/v2.0/ping HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (got, waited) = wait_closed(&mut s, Duration::from_secs(8));
    assert!(String::from_utf8_lossy(&got).contains("Pong"));
    assert!(waited >= Duration::from_millis(1500), "closed too early: {waited:?}");

    // 4. A request body that stalls ends after the body timeout with an answer, not a hang.
    let auth = "Basic YWRtaW46SGFyYm9yMTIzNDU="; // admin:Harbor12345
    let resp = request(
        &addr,
        &format!(
            "POST /v2/library/slow/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
             Content-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    assert!(resp.starts_with("HTTP/1.1 202"), "{resp}");
    let loc = resp.lines().find_map(|l| l.strip_prefix("location: ")).unwrap().trim().to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "PATCH {loc} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 1000\r\n\r\n0123456789"
    )
    .unwrap();
    let (got, waited) = wait_closed(&mut s, Duration::from_secs(10));
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(waited >= Duration::from_millis(1500) && waited < Duration::from_secs(8), "{waited:?}");
    drop(child);
}

// Issue 18: a refusal answered before the body is read (an anonymous PATCH of a multi-MiB layer)
// reaches the client: the server reads the body first (bounded), so the client — which, like
// Go's, writes the whole body before reading — gets the complete 401, and the connection stays
// usable.
#[test]
fn a_401_before_a_large_body_is_read_reaches_the_client() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let (child, addr) = start(dir.path(), &[]);
    let body = vec![b'x'; 4 * 1024 * 1024];
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "PATCH /v2/library/app/blobs/uploads/0f0e0d0c-0b0a-4909-8807-060504030201 HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(&body).expect("the server reads the body instead of resetting the connection");
    let mut head = Vec::new();
    let mut buf = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut buf).expect("response head"), 1, "closed mid-head: {head:?}");
        head.push(buf[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(head.contains("www-authenticate: bearer realm="), "{head}");
    let len: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length: ")).unwrap().trim().parse().unwrap();
    let mut rest = vec![0u8; len];
    s.read_exact(&mut rest).unwrap();
    assert!(String::from_utf8_lossy(&rest).contains("UNAUTHORIZED"));
    // The connection is still usable.
    write!(s, "{PING}").unwrap();
    let mut more = String::new();
    s.read_to_string(&mut more).unwrap();
    assert!(more.starts_with("HTTP/1.1 200") && more.ends_with("Pong"), "{more}");
    drop(child);
}
