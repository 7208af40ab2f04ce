//! The schedule of a system job (GC, audit log purge): its state line and the Repeat / Cron
//! fields of its form, as Harbor's Clean Up tabs show them.

use leptos::prelude::*;

use crate::components::format::{datetime, parse_rfc3339};
use crate::i18n::{fill, t, tv};
use crate::rest::gc::ScheduleObj;

/// The schedule's type, `None` when unset.
fn kind_of(s: &ScheduleObj) -> String {
    if s.kind.is_empty() {
        "None".to_string()
    } else {
        s.kind.clone()
    }
}

/// "Daily (0 0 0 * * *); next run …", or "Not scheduled.".
#[component]
pub fn ScheduleState(schedule: ScheduleObj, #[prop(into)] testid: String) -> impl IntoView {
    let kind = kind_of(&schedule);
    let next = schedule
        .next_scheduled_time
        .as_deref()
        .filter(|_| kind != "None")
        .map(|t| datetime(parse_rfc3339(t).unwrap_or(0)));
    view! {
        <p class="muted" data-testid=testid>
            {match next {
                Some(n) => fill(t("{} ({}); next run {}"), &[&tv(&kind), &schedule.cron, &n]),
                None => t("Not scheduled.").to_string(),
            }}
        </p>
    }
}

/// The `kind` select and `cron` input of a schedule form; `id` prefixes the controls' ids.
#[component]
pub fn ScheduleFields(schedule: ScheduleObj, id: &'static str) -> impl IntoView {
    let kind = kind_of(&schedule);
    let (kind_id, cron_id) = (format!("{id}-kind"), format!("{id}-cron"));
    view! {
        <label for=kind_id.clone()>{t("Repeat")}</label>
        <select id=kind_id name="kind">
            {["None", "Hourly", "Daily", "Weekly", "Custom"].into_iter().map(|k| {
                view! { <option value=k selected=k == kind>{tv(k)}</option> }
            }).collect_view()}
        </select>
        <label for=cron_id.clone()>{t("Cron (Custom; seconds first, e.g. 0 30 2 * * *)")}</label>
        <input id=cron_id name="cron" type="text" value=schedule.cron spellcheck="false" />
    }
}
