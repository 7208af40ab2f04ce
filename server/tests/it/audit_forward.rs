//! Audit log forwarding to syslog (`audit_log_forward_endpoint`, `skip_audit_log_database`):
//! RFC 5424 messages with octet counting over TCP and one per datagram over UDP, received by
//! listeners this test opens on 127.0.0.1; events stored and forwarded, or only forwarded; a
//! receiver that is down at first gets the events once it is up; bad settings are 400s.
//! SQLite and PostgreSQL.

use std::time::Duration;

use crate::common::oci::admin;
use crate::common::{api, TestApp};
use axum::http::{Method, StatusCode};
use serde_json::json;
use tokio::io::AsyncReadExt;

async fn configure(app: &TestApp, body: serde_json::Value) -> crate::common::Resp {
    api(app, Method::PUT, "/api/v2.0/configurations", &admin(), body).await
}

async fn project(app: &TestApp, name: &str) {
    let r = api(app, Method::POST, "/api/v2.0/projects", &admin(), json!({"project_name": name})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    app.state.audit.flush(&app.state.db).await.unwrap();
}

async fn stored(app: &TestApp, resource: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE resource = $1")
        .bind(resource)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap()
}

/// The syslog side of one connection: octet-counted messages (`LEN SP MSG`).
struct Receiver {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl Receiver {
    async fn accept(listener: &tokio::net::TcpListener) -> Receiver {
        let (stream, _) = tokio::time::timeout(Duration::from_secs(20), listener.accept())
            .await
            .expect("the forwarder connected in time")
            .unwrap();
        Receiver { stream, buf: vec![] }
    }

    /// The next message containing `needle` (earlier ones are skipped).
    async fn message(&mut self, needle: &str) -> String {
        let read = async {
            loop {
                while let Some(sp) = self.buf.iter().position(|&b| b == b' ') {
                    let len: usize =
                        std::str::from_utf8(&self.buf[..sp]).unwrap().parse().expect("octet count");
                    if self.buf.len() < sp + 1 + len {
                        break;
                    }
                    let msg = String::from_utf8(self.buf[sp + 1..sp + 1 + len].to_vec()).unwrap();
                    self.buf.drain(..sp + 1 + len);
                    if msg.contains(needle) {
                        return msg;
                    }
                }
                let mut chunk = [0u8; 4096];
                let n = self.stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the connection closed before {needle:?} arrived");
                self.buf.extend_from_slice(&chunk[..n]);
            }
        };
        tokio::time::timeout(Duration::from_secs(20), read).await.expect("the message arrived in time")
    }
}

both_dbs!(events_are_forwarded_over_tcp_and_udp_and_may_skip_the_database, |app| {
    // Bad settings.
    let r = configure(&app, json!({"skip_audit_log_database": true})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.text().contains("audit_log_forward_endpoint"), "{}", r.text());
    for bad in ["http://x:1", "nohost", "x:0"] {
        let r = configure(&app, json!({"audit_log_forward_endpoint": bad})).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
    }

    // TCP, stored and forwarded.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let r = configure(&app, json!({"audit_log_forward_endpoint": format!("127.0.0.1:{port}")})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let got =
        api(&app, Method::GET, "/api/v2.0/configurations", &admin(), serde_json::Value::Null).await.json();
    assert_eq!(got["audit_log_forward_endpoint"]["value"], format!("127.0.0.1:{port}"));
    project(&app, "fw-one").await;
    let mut rx = Receiver::accept(&listener).await;
    let msg = rx.message("resource=\"fw-one\"").await;
    assert!(msg.starts_with("<14>1 "), "{msg}");
    assert!(
        msg.contains(" berth ")
            && msg.contains(" audit [audit@32473 operation=\"create\" resource_type=\"project\""),
        "{msg}"
    );
    assert!(msg.contains("username=\"admin\""), "{msg}");
    assert!(msg.ends_with("admin create project fw-one"), "{msg}");
    assert_eq!(stored(&app, "fw-one").await, 1);

    // Only forwarded.
    let r = configure(&app, json!({"skip_audit_log_database": true})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    project(&app, "fw-two").await;
    // On the same connection: the forwarder keeps it.
    let msg = rx.message("resource=\"fw-two\"").await;
    assert!(msg.ends_with("admin create project fw-two"), "{msg}");
    assert_eq!(stored(&app, "fw-two").await, 0, "skipped the database");

    // UDP.
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uport = udp.local_addr().unwrap().port();
    let r = configure(&app, json!({"audit_log_forward_endpoint": format!("udp://127.0.0.1:{uport}"), "skip_audit_log_database": false})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    project(&app, "fw-three").await;
    let recv = async {
        loop {
            let mut buf = vec![0u8; 65536];
            let n = udp.recv(&mut buf).await.unwrap();
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            if m.contains("resource=\"fw-three\"") {
                return m;
            }
        }
    };
    let m = tokio::time::timeout(Duration::from_secs(20), recv).await.expect("the datagram arrived");
    assert!(m.starts_with("<14>1 ") && m.ends_with("admin create project fw-three"), "{m}");
    assert_eq!(stored(&app, "fw-three").await, 1);
});

both_dbs!(a_receiver_down_at_first_gets_the_events_once_up, |app| {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = configure(&app, json!({"audit_log_forward_endpoint": format!("tcp://127.0.0.1:{port}")})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    project(&app, "late-one").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(app.state.audit.forward.queued() > 0, "kept while the receiver is down");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let msg = Receiver::accept(&listener).await.message("resource=\"late-one\"").await;
    assert!(msg.ends_with("admin create project late-one"), "{msg}");
    assert_eq!(stored(&app, "late-one").await, 1);
});
