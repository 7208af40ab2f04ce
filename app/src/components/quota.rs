//! A project's storage quota: the bar (used of the limit, with both numbers; amber from 70 %,
//! red from 90 %, Harbor's thresholds; "unlimited" when the limit is -1), and the fields that
//! edit a limit (a number and a unit, -1 for unlimited) used by the project's configuration and
//! the system's default quota.

use leptos::prelude::*;

use crate::components::format::bytes;
use crate::i18n::{fill, t};

/// How full a quota is: `ok`, `warn` (≥ 70 %), `danger` (≥ 90 %), or `unlimited`.
pub fn level(used: i64, hard: i64) -> &'static str {
    if hard < 0 {
        return "unlimited";
    }
    let pct = percent(used, hard);
    if pct >= 90 {
        "danger"
    } else if pct >= 70 {
        "warn"
    } else {
        "ok"
    }
}

/// Used as a percentage of the limit, 0–100 (a zero limit with anything used is full).
pub fn percent(used: i64, hard: i64) -> i64 {
    if hard < 0 {
        0
    } else if hard == 0 {
        if used > 0 {
            100
        } else {
            0
        }
    } else {
        ((used.max(0) as i128 * 100) / hard as i128).min(100) as i64
    }
}

/// `used` of `hard` bytes as a bar with the numbers (`12.0 MiB of 1.0 GiB`), or `12.0 MiB of
/// unlimited` without a bar.
#[component]
pub fn QuotaBar(used: i64, hard: i64, #[prop(optional)] testid: &'static str) -> impl IntoView {
    let lvl = level(used, hard);
    let pct = percent(used, hard);
    let text = if hard < 0 {
        fill(t("{} of unlimited"), &[&bytes(used)])
    } else {
        fill(t("{} of {}"), &[&bytes(used), &bytes(hard)])
    };
    let testid = if testid.is_empty() { "quota" } else { testid };
    view! {
        <span class="quota" data-testid=testid data-level=lvl data-used=used.to_string() data-hard=hard.to_string()>
            {(hard >= 0).then(|| view! {
                <span class="bar quota-bar" role="progressbar" aria-label=t("Quota used")
                    aria-valuemin="0" aria-valuemax="100" aria-valuenow=pct.to_string() aria-valuetext=text.clone()>
                    <span class=format!("bar-fill bar-{lvl}") style=format!("width: {pct}%")></span>
                </span>
            })}
            <span class="bar-value" data-testid="quota-text">{text.clone()}</span>
        </span>
    }
}

/// The units a limit is entered in, with their size in bytes.
pub const UNITS: [(&str, i64); 4] = [("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40), ("PiB", 1 << 50)];

/// A limit in bytes as the form shows it: the number and the largest unit it is a whole
/// multiple of (MiB at least); -1 stays `-1`.
pub fn split_limit(hard: i64) -> (String, &'static str) {
    if hard < 0 {
        return ("-1".into(), "GiB");
    }
    for (unit, size) in UNITS.iter().rev() {
        if hard >= *size && hard % size == 0 {
            return ((hard / size).to_string(), unit);
        }
    }
    let mib = hard as f64 / (1u64 << 20) as f64;
    (format!("{}", (mib * 100.0).round() / 100.0), "MiB")
}

/// The form's number and unit as bytes: -1 (unlimited) or a non-negative amount; `None` when
/// the number is not one.
pub fn join_limit(number: &str, unit: &str) -> Option<i64> {
    let n: f64 = number.trim().parse().ok()?;
    if n == -1.0 {
        return Some(-1);
    }
    if n < 0.0 || !n.is_finite() {
        return None;
    }
    let size = UNITS.iter().find(|(u, _)| *u == unit)?.1;
    let b = n * size as f64;
    (b <= i64::MAX as f64).then_some(b.round() as i64)
}

/// A number and a unit for a storage limit (`-1` for unlimited); `id` names the number input.
#[component]
pub fn LimitFields(
    id: &'static str,
    label: &'static str,
    number: RwSignal<String>,
    unit: RwSignal<String>,
    #[prop(optional)] disabled: bool,
) -> impl IntoView {
    let unit_id = format!("{id}-unit");
    view! {
        <label for=id>{label}</label>
        <div class="inline-fields">
            <input id=id type="number" min="-1" step="any" required disabled=disabled
                value=number.get_untracked() bind:value=number
                data-testid=id />
            <label class="visually-hidden" for=unit_id.clone()>{t("Unit")}</label>
            <select id=unit_id disabled=disabled data-testid=format!("{id}-unit")
                on:change=move |ev| unit.set(event_target_value(&ev))>
                {UNITS.iter().map(|(u, _)| view! { <option value=*u selected=move || unit.get() == *u>{*u}</option> }).collect_view()}
            </select>
        </div>
        <p class="muted small">{t("-1 means unlimited.")}</p>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_percentages() {
        assert_eq!(level(0, -1), "unlimited");
        assert_eq!(level(69, 100), "ok");
        assert_eq!(level(70, 100), "warn");
        assert_eq!(level(90, 100), "danger");
        assert_eq!(level(500, 100), "danger");
        assert_eq!(percent(500, 100), 100);
        assert_eq!(percent(1, 0), 100);
        assert_eq!(percent(0, 0), 0);
    }

    #[test]
    fn limits_round_trip() {
        assert_eq!(split_limit(-1), ("-1".to_string(), "GiB"));
        assert_eq!(split_limit(10 << 30), ("10".to_string(), "GiB"));
        assert_eq!(split_limit(3 << 20), ("3".to_string(), "MiB"));
        assert_eq!(split_limit(1 << 40), ("1".to_string(), "TiB"));
        assert_eq!(join_limit("10", "GiB"), Some(10 << 30));
        assert_eq!(join_limit("-1", "MiB"), Some(-1));
        assert_eq!(join_limit("0.5", "MiB"), Some(1 << 19));
        assert_eq!(join_limit("-2", "MiB"), None);
        assert_eq!(join_limit("x", "MiB"), None);
    }
}
