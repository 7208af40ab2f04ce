//! Formatting shared by server rendering and hydration (must give identical output on both).

/// `YYYY-MM-DD HH:MM UTC` from Unix milliseconds.
pub fn datetime(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, (rem % 3600) / 60)
}

/// Bytes in binary units with one decimal (`1.5 GiB`), exact below 1 KiB.
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n.max(0) as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{} B", n.max(0))
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A duration in milliseconds as `1h 2m`, `3m 4s`, `5.6s`.
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s >= 3600 {
        format!("{}h {}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {}s", s / 60, s % 60)
    } else {
        format!("{:.1}s", ms.max(0) as f64 / 1000.0)
    }
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc() {
        assert_eq!(super::datetime(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::datetime(1_714_564_800_123), "2024-05-01 12:00 UTC");
        assert_eq!(super::datetime(951_782_400_000), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn formats_sizes_and_durations() {
        assert_eq!(super::bytes(0), "0 B");
        assert_eq!(super::bytes(1023), "1023 B");
        assert_eq!(super::bytes(1536), "1.5 KiB");
        assert_eq!(super::bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert_eq!(super::duration(5_600), "5.6s");
        assert_eq!(super::duration(184_000), "3m 4s");
        assert_eq!(super::duration(3_720_000), "1h 2m");
    }
}
