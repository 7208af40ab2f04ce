//! Audit log forwarding to syslog (Harbor's `audit_log_forward_endpoint` and
//! `skip_audit_log_database` settings), as RFC 5424 messages: over TCP with octet-counting
//! framing (RFC 6587), or UDP one message per datagram (RFC 5426).
//!
//! The audit writer (`audit::AuditLog::flush`) hands each batch to the [`Forwarder`], which
//! queues it (bounded: [`MAX_QUEUED`] events, the oldest dropped and counted beyond) and sends
//! from its own task, so a slow or absent syslog server never delays the database writes or a
//! request. A failed send keeps the events and retries with backoff (0.5 s doubling to 10 s);
//! events are delivered at least once (a connection that breaks mid-batch resends the batch).
//! The endpoint is read from the settings at most every [`REFRESH`] per replica.
//!
//! Message: `<14>1 TIMESTAMP HOST berth PID audit [audit@32473 operation=… resource_type=…
//! resource=… username=… client_ip=… success=… project_id=…] username operation resource_type
//! resource` (facility user, severity informational; the structured data carries every field).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::audit::Event;
use crate::db::Db;

/// Events waiting for the syslog server, at most.
pub const MAX_QUEUED: usize = 100_000;
/// How long a read of the endpoint setting is reused.
pub const REFRESH: Duration = Duration::from_secs(5);

/// Where audit events go besides (or instead of) the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub udp: bool,
    /// `host:port`.
    pub addr: String,
}

/// Parses `audit_log_forward_endpoint`: `host:port` or `tcp://host:port` (TCP, Harbor's form),
/// `udp://host:port`; empty: no forwarding.
pub fn parse_endpoint(s: &str) -> Result<Option<Target>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let (udp, rest) = match s.split_once("://") {
        Some(("tcp", r)) => (false, r),
        Some(("udp", r)) => (true, r),
        Some((other, _)) => {
            return Err(format!("audit_log_forward_endpoint: unknown scheme {other:?} (tcp or udp)"))
        }
        None => (false, s),
    };
    let (host, port) = rest.rsplit_once(':').ok_or_else(|| {
        "audit_log_forward_endpoint must be host:port (or tcp:// / udp://host:port)".to_string()
    })?;
    let port: u16 = port.parse().map_err(|_| format!("audit_log_forward_endpoint: bad port {port:?}"))?;
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    if !host_ok || port == 0 {
        return Err(format!("audit_log_forward_endpoint: bad host or port in {s:?}"));
    }
    Ok(Some(Target { udp, addr: format!("{host}:{port}") }))
}

fn sd_escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace(']', "\\]")
}

/// The RFC 5424 message of an event.
pub fn format(e: &Event, host: &str) -> String {
    let ts = chrono::DateTime::from_timestamp_millis(e.op_time)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let project = e.project_id.map(|p| p.to_string()).unwrap_or_default();
    let mut sd = format!(
        "[audit@32473 operation=\"{}\" resource_type=\"{}\" resource=\"{}\" username=\"{}\" client_ip=\"{}\" success=\"{}\" project_id=\"{}\"",
        sd_escape(&e.operation),
        sd_escape(&e.resource_type),
        sd_escape(&e.resource),
        sd_escape(&e.username),
        sd_escape(&e.client_ip),
        e.success,
        project
    );
    if !e.detail.is_empty() {
        sd.push_str(&format!(" detail=\"{}\"", sd_escape(&e.detail)));
    }
    sd.push(']');
    let msg = format!("{} {} {} {}", e.username, e.operation, e.resource_type, e.resource);
    // The message itself is text, not structured data: no control characters.
    let msg: String = msg.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    format!("<14>1 {ts} {host} berth {} audit {sd} {msg}", std::process::id())
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Event>,
    dropped: u64,
    running: bool,
    /// The endpoint and whether the database is skipped, and when they were read.
    settings: Option<(Instant, Option<Target>, bool)>,
}

/// The queue and the sending task of one replica.
#[derive(Debug, Default)]
pub struct Forwarder {
    state: Mutex<State>,
    wake: tokio::sync::Notify,
}

impl Forwarder {
    /// The endpoint and `skip_audit_log_database`, read at most every `REFRESH`.
    pub async fn settings(&self, db: &Db) -> Result<(Option<Target>, bool), sqlx::Error> {
        if let Some((at, t, skip)) = self.state.lock().unwrap_or_else(|e| e.into_inner()).settings.as_ref() {
            if at.elapsed() < REFRESH {
                return Ok((t.clone(), *skip));
            }
        }
        let rows: Vec<(String, String)> = match sqlx::query_as(
            "SELECT name, value FROM settings WHERE name IN ('audit_log_forward_endpoint', 'skip_audit_log_database')",
        )
        .fetch_all(&db.pool)
        .await
        {
            Ok(rows) => rows,
            Err(e) => {
                // The database is down: keep forwarding where we last knew to.
                return match self.state.lock().unwrap_or_else(|e| e.into_inner()).settings.as_ref() {
                    Some((_, t, skip)) => Ok((t.clone(), *skip)),
                    None => Err(e),
                };
            }
        };
        let (mut target, mut skip) = (None, false);
        for (k, v) in rows {
            let v: serde_json::Value = serde_json::from_str(&v).unwrap_or_default();
            match k.as_str() {
                "audit_log_forward_endpoint" => {
                    target = parse_endpoint(v.as_str().unwrap_or("")).ok().flatten()
                }
                _ => skip = v.as_bool().unwrap_or(false),
            }
        }
        // The database is skipped only while events have somewhere else to go.
        let skip = skip && target.is_some();
        self.state.lock().unwrap_or_else(|e| e.into_inner()).settings =
            Some((Instant::now(), target.clone(), skip));
        Ok((target, skip))
    }

    /// Forgets the cached settings (after `PUT /configurations` on this replica).
    pub fn refresh(&self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).settings = None;
    }

    /// Queues events for `target` and makes sure the sending task runs.
    pub fn send(self: &std::sync::Arc<Self>, events: &[Event]) {
        let start = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            for e in events {
                if st.queue.len() >= MAX_QUEUED {
                    st.queue.pop_front();
                    st.dropped += 1;
                }
                st.queue.push_back(e.clone());
            }
            !std::mem::replace(&mut st.running, true)
        };
        if start {
            let me = self.clone();
            tokio::spawn(async move { me.run().await });
        }
        self.wake.notify_one();
    }

    /// Events waiting to be sent.
    pub fn queued(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).queue.len()
    }

    async fn run(self: std::sync::Arc<Self>) {
        let host = crate::jobs::hostname().to_string();
        let host = if host.is_empty() || host.contains(' ') { "-".to_string() } else { host };
        let mut conn: Option<(Target, tokio::net::TcpStream)> = None;
        let mut backoff = Duration::from_millis(500);
        loop {
            let (batch, target, dropped) = {
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let target = st.settings.as_ref().and_then(|(_, t, _)| t.clone());
                let n = st.queue.len().min(1000);
                (
                    st.queue.iter().take(n).cloned().collect::<Vec<_>>(),
                    target,
                    std::mem::take(&mut st.dropped),
                )
            };
            if dropped > 0 {
                tracing::warn!(dropped, "audit forwarding queue overflowed; the oldest events were dropped");
            }
            let Some(target) = target else {
                // Forwarding was turned off: what is queued has no destination.
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                st.queue.clear();
                st.running = false;
                return;
            };
            if batch.is_empty() {
                let notified = self.wake.notified();
                if tokio::time::timeout(Duration::from_secs(30), notified).await.is_err() {
                    let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    if st.queue.is_empty() {
                        st.running = false;
                        return;
                    }
                }
                continue;
            }
            let lines: Vec<String> = batch.iter().map(|e| format(e, &host)).collect();
            match deliver(&target, &mut conn, &lines).await {
                Ok(()) => {
                    backoff = Duration::from_millis(500);
                    let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                    let n = batch.len().min(st.queue.len());
                    st.queue.drain(..n);
                }
                Err(e) => {
                    conn = None;
                    tracing::warn!(endpoint = target.addr, error = %e, "could not forward audit events; will retry");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

async fn deliver(
    target: &Target,
    conn: &mut Option<(Target, tokio::net::TcpStream)>,
    lines: &[String],
) -> std::io::Result<()> {
    let timeout = Duration::from_secs(5);
    if target.udp {
        let sock =
            tokio::net::UdpSocket::bind(if target.addr.starts_with('[') { "[::]:0" } else { "0.0.0.0:0" })
                .await?;
        sock.connect(&target.addr).await?;
        for l in lines {
            tokio::time::timeout(timeout, sock.send(l.as_bytes()))
                .await
                .map_err(|_| std::io::ErrorKind::TimedOut)??;
        }
        return Ok(());
    }
    if conn.as_ref().is_none_or(|(t, _)| t != target) {
        let s = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&target.addr))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        s.set_nodelay(true)?;
        *conn = Some((target.clone(), s));
    }
    let (_, s) = conn.as_mut().expect("connected above");
    let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 8).sum());
    for l in lines {
        buf.extend_from_slice(format!("{} ", l.len()).as_bytes());
        buf.extend_from_slice(l.as_bytes());
    }
    tokio::time::timeout(timeout, s.write_all(&buf))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let t = |udp, a: &str| Some(Target { udp, addr: a.into() });
        assert_eq!(parse_endpoint("").unwrap(), None);
        assert_eq!(parse_endpoint("syslog.example.com:514").unwrap(), t(false, "syslog.example.com:514"));
        assert_eq!(parse_endpoint("tcp://10.0.0.1:601").unwrap(), t(false, "10.0.0.1:601"));
        assert_eq!(parse_endpoint("udp://[::1]:514").unwrap(), t(true, "[::1]:514"));
        for bad in ["nohost", "http://x:1", "x:0", "x:99999", ":514", "a b:514"] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn messages_are_rfc5424_with_escaped_structured_data() {
        let mut e = Event::new("al\"ice", "create", "artifact", "p1/app:v]1");
        e.op_time = 1_700_000_000_123;
        e.project_id = Some(3);
        e.detail = "a\\b".into();
        let m = format(&e, "node-1");
        assert!(m.starts_with("<14>1 2023-11-14T22:13:20.123Z node-1 berth "), "{m}");
        assert!(m.contains(" audit [audit@32473 operation=\"create\" resource_type=\"artifact\" resource=\"p1/app:v\\]1\" username=\"al\\\"ice\""), "{m}");
        assert!(m.contains("project_id=\"3\" detail=\"a\\\\b\"]"), "{m}");
        assert!(m.ends_with("] al\"ice create artifact p1/app:v]1"), "{m}");
    }
}
