//! Formatting shared by server rendering and hydration (must give identical output on both).
//! Times render in UTC on the server and switch to the browser's time zone and the page's
//! language once hydrated (`Time`).

use leptos::prelude::*;

/// `YYYY-MM-DD HH:MM UTC` from Unix milliseconds.
pub fn datetime(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, (rem % 3600) / 60)
}

/// A point in time: `YYYY-MM-DD HH:MM UTC` as rendered on the server, then the browser's
/// local date and time in the page's language (`Intl`) once the page runs; the exact UTC
/// time stays in `datetime` and as a tooltip. `ms` 0 (never) shows a dash.
#[component]
pub fn Time(ms: i64) -> impl IntoView {
    if ms <= 0 {
        return view! { <span class="muted">"—"</span> }.into_any();
    }
    let utc = datetime(ms);
    let text = RwSignal::new(utc.clone());
    #[cfg(feature = "hydrate")]
    {
        let tag = crate::i18n::lang().tag();
        Effect::new(move |_| text.set(local(ms, tag)));
    }
    let iso = {
        let t = &utc;
        format!("{}T{}:00Z", &t[..10], &t[11..16])
    };
    view! { <time datetime=iso title=utc>{move || text.get()}</time> }.into_any()
}

/// A time the API wrote as RFC 3339 (a dash when absent or unreadable).
pub fn time_str(s: &str) -> impl IntoView {
    view! { <Time ms=parse_rfc3339(s).unwrap_or(0) /> }
}

#[cfg(feature = "hydrate")]
fn local(ms: i64, lang: &str) -> String {
    use wasm_bindgen::JsValue;
    let date = js_sys::Date::new(&JsValue::from_f64(ms as f64));
    let opts = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&opts, &"dateStyle".into(), &"medium".into());
    let _ = js_sys::Reflect::set(&opts, &"timeStyle".into(), &"short".into());
    String::from(date.to_locale_string(lang, &opts))
}

/// Unix milliseconds from RFC 3339 as the API writes it (`2026-11-22T14:05:00.123Z`, also
/// without the fraction or with a `+00:00` offset); `None` for anything else.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<i64>().ok());
    let (y, mo, d, h, mi, se) =
        (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut ms = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let f = &frac[..digits];
        ms = format!("{:0<3}", &f[..f.len().min(3)]).parse::<i64>().ok()?;
        rest = &frac[digits..];
    }
    if !(rest == "Z" || rest == "+00:00") {
        return None;
    }
    Some((days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + se) * 1000 + ms)
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

/// Howard Hinnant's civil-to-days algorithm.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
    fn parses_api_times() {
        for ms in [0, 1_714_564_800_123, 951_782_400_000, 1_795_356_300_999] {
            let t = super::datetime(ms);
            let iso = format!("{}T{}:{:02}.{:03}Z", &t[..10], &t[11..16], (ms / 1000) % 60, ms % 1000);
            assert_eq!(super::parse_rfc3339(&iso), Some(ms), "{iso}");
        }
        assert_eq!(super::parse_rfc3339("2024-05-01T12:00:00Z"), Some(1_714_564_800_000));
        assert_eq!(super::parse_rfc3339("2024-05-01T12:00:00.5+00:00"), Some(1_714_564_800_500));
        for bad in ["", "yesterday", "2024-05-01", "2024-13-01T00:00:00Z", "2024-05-01T12:00:00+08:00"] {
            assert_eq!(super::parse_rfc3339(bad), None, "{bad}");
        }
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
