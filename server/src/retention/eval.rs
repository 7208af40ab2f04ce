//! Rule evaluation, pure: which artifacts of one repository a policy keeps.
//!
//! Harbor's `or` algorithm (goharbor/harbor `src/pkg/retention/policy/alg/or`): every enabled
//! rule whose repository selector selects the repository looks at the repository's artifacts
//! its tag selectors select, and retains some of them by its template; an artifact is kept
//! when **any** rule retains it, and every other artifact of the repository is deleted —
//! including artifacts no rule's tag selector looked at (Harbor's semantics: the rules list
//! what to keep). A repository no rule selects is left alone.
//!
//! Ties: `latestPushedK` / `latestPulledN` order by the time, then by the artifact's id
//! (the later row first), so the same data always gives the same answer (Harbor's unstable
//! sort does not).

use std::sync::Arc;

use crate::replication::filters::Pattern;

pub const DAY_MS: i64 = 86_400_000;

/// An artifact as the rules see it: its tags and labels, the last push of it or of any of its
/// tags, and its last pull (0: never).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Candidate {
    pub id: i64,
    pub digest: String,
    pub tags: Vec<String>,
    pub labels: Vec<String>,
    pub pushed_at: i64,
    pub pulled_at: i64,
}

/// What a rule retains of the artifacts it looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Template {
    /// The K most recently pushed.
    LatestPushed(usize),
    /// The N most recently pulled (never pulled counts as oldest).
    LatestPulled(usize),
    /// Pushed within the last N days.
    DaysSincePush(i64),
    /// Pulled within the last N days.
    DaysSincePull(i64),
    Always,
}

impl Template {
    /// Harbor's template name and its parameter key (the same string).
    pub fn name(&self) -> &'static str {
        match self {
            Template::LatestPushed(_) => "latestPushedK",
            Template::LatestPulled(_) => "latestPulledN",
            Template::DaysSincePush(_) => "nDaysSinceLastPush",
            Template::DaysSincePull(_) => "nDaysSinceLastPull",
            Template::Always => "always",
        }
    }

    /// The parameter's value, `None` for `always`.
    pub fn param(&self) -> Option<i64> {
        match *self {
            Template::LatestPushed(k) | Template::LatestPulled(k) => Some(k as i64),
            Template::DaysSincePush(n) | Template::DaysSincePull(n) => Some(n),
            Template::Always => None,
        }
    }
}

/// Selects the artifacts a rule looks at.
#[derive(Debug, Clone)]
pub enum TagSelector {
    /// Tags by a doublestar pattern: `matches` selects an artifact with any matching tag,
    /// `excludes` one with any tag that does not match; an untagged artifact is selected when
    /// `untagged` is set (Harbor's `extras: {"untagged": true}`).
    Tags { excludes: bool, pattern: Arc<Pattern>, untagged: bool },
    /// Labels (Harbor's `label` selector): `withLabels` needs every named label,
    /// `withoutLabels` none of them.
    Labels { without: bool, names: Vec<String> },
}

impl TagSelector {
    pub fn selects(&self, c: &Candidate) -> bool {
        match self {
            TagSelector::Tags { excludes, pattern, untagged } => {
                if c.tags.is_empty() {
                    *untagged
                } else {
                    c.tags.iter().any(|t| pattern.is_match(t) != *excludes)
                }
            }
            TagSelector::Labels { without, names } => {
                names.iter().all(|n| c.labels.iter().any(|l| l == n) != *without)
            }
        }
    }
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub disabled: bool,
    pub template: Template,
    /// Repository selectors (all must select), on the name inside the project.
    pub repositories: Vec<(bool, Arc<Pattern>)>,
    /// Tag and label selectors (all must select).
    pub tags: Vec<TagSelector>,
}

impl Rule {
    /// Whether this rule applies to the repository (its name inside the project).
    pub fn covers(&self, repository: &str) -> bool {
        !self.disabled && self.repositories.iter().all(|(excludes, p)| p.is_match(repository) != *excludes)
    }
}

/// The rules that apply to `repository` (its name inside the project); none: leave it alone.
pub fn rules_for<'a>(rules: &'a [Rule], repository: &str) -> Vec<&'a Rule> {
    rules.iter().filter(|r| r.covers(repository)).collect()
}

/// Which of `candidates` (one repository's) `rules` keep, by index. `now` in ms.
pub fn retained(rules: &[&Rule], candidates: &[Candidate], now: i64) -> Vec<bool> {
    let mut keep = vec![false; candidates.len()];
    for rule in rules {
        let mut seen: Vec<usize> =
            (0..candidates.len()).filter(|&i| rule.tags.iter().all(|s| s.selects(&candidates[i]))).collect();
        match rule.template {
            Template::Always => seen.iter().for_each(|&i| keep[i] = true),
            Template::LatestPushed(k) => {
                seen.sort_by_key(|&i| std::cmp::Reverse((candidates[i].pushed_at, candidates[i].id)));
                seen.iter().take(k).for_each(|&i| keep[i] = true);
            }
            Template::LatestPulled(n) => {
                seen.sort_by_key(|&i| std::cmp::Reverse((candidates[i].pulled_at, candidates[i].id)));
                seen.iter().take(n).for_each(|&i| keep[i] = true);
            }
            Template::DaysSincePush(n) => {
                let since = now.saturating_sub(n.saturating_mul(DAY_MS));
                seen.iter().filter(|&&i| candidates[i].pushed_at >= since).for_each(|&i| keep[i] = true);
            }
            Template::DaysSincePull(n) => {
                let since = now.saturating_sub(n.saturating_mul(DAY_MS));
                seen.iter()
                    .filter(|&&i| candidates[i].pulled_at > 0 && candidates[i].pulled_at >= since)
                    .for_each(|&i| keep[i] = true);
            }
        }
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000 * DAY_MS;

    fn pat(p: &str) -> Arc<Pattern> {
        Arc::new(Pattern::new(p).unwrap())
    }

    fn tags(p: &str, untagged: bool) -> TagSelector {
        TagSelector::Tags { excludes: false, pattern: pat(p), untagged }
    }

    fn rule(template: Template, sel: Vec<TagSelector>) -> Rule {
        Rule { disabled: false, template, repositories: vec![(false, pat("**"))], tags: sel }
    }

    fn cand(id: i64, t: &[&str], pushed_days_ago: i64, pulled_days_ago: Option<i64>) -> Candidate {
        Candidate {
            id,
            digest: format!("sha256:{id}"),
            tags: t.iter().map(|s| s.to_string()).collect(),
            labels: vec![],
            pushed_at: NOW - pushed_days_ago * DAY_MS,
            pulled_at: pulled_days_ago.map_or(0, |d| NOW - d * DAY_MS),
        }
    }

    fn kept(rules: &[Rule], cs: &[Candidate]) -> Vec<i64> {
        let refs: Vec<&Rule> = rules.iter().collect();
        retained(&refs, cs, NOW).iter().zip(cs).filter(|(k, _)| **k).map(|(_, c)| c.id).collect()
    }

    fn sample() -> Vec<Candidate> {
        vec![
            cand(1, &["v1"], 30, Some(1)),
            cand(2, &["v2"], 20, None),
            cand(3, &["v3", "latest"], 10, Some(5)),
            cand(4, &[], 5, Some(2)),
            cand(5, &["dev-1"], 1, None),
        ]
    }

    #[test]
    fn latest_pushed_keeps_the_k_newest_it_selects() {
        let cs = sample();
        assert_eq!(kept(&[rule(Template::LatestPushed(2), vec![tags("**", false)])], &cs), [3, 5]);
        // Untagged included: the untagged artifact is newer than 3.
        assert_eq!(kept(&[rule(Template::LatestPushed(2), vec![tags("**", true)])], &cs), [4, 5]);
        assert_eq!(kept(&[rule(Template::LatestPushed(0), vec![tags("**", true)])], &cs), Vec::<i64>::new());
        assert_eq!(kept(&[rule(Template::LatestPushed(99), vec![tags("v*", false)])], &cs), [1, 2, 3]);
    }

    #[test]
    fn latest_pulled_counts_never_pulled_as_oldest() {
        let cs = sample();
        assert_eq!(kept(&[rule(Template::LatestPulled(2), vec![tags("**", true)])], &cs), [1, 4]);
        assert_eq!(kept(&[rule(Template::LatestPulled(3), vec![tags("**", false)])], &cs), [1, 3, 5]);
    }

    #[test]
    fn days_since_push_and_pull() {
        let cs = sample();
        assert_eq!(kept(&[rule(Template::DaysSincePush(10), vec![tags("**", true)])], &cs), [3, 4, 5]);
        assert_eq!(kept(&[rule(Template::DaysSincePush(0), vec![tags("**", true)])], &cs), Vec::<i64>::new());
        // Never pulled is never "pulled within N days".
        assert_eq!(kept(&[rule(Template::DaysSincePull(2), vec![tags("**", true)])], &cs), [1, 4]);
        assert_eq!(kept(&[rule(Template::DaysSincePull(10_000), vec![tags("**", true)])], &cs), [1, 3, 4]);
    }

    #[test]
    fn always_and_the_or_of_rules() {
        let cs = sample();
        assert_eq!(kept(&[rule(Template::Always, vec![tags("dev-*", false)])], &cs), [5]);
        let rules = [
            rule(Template::Always, vec![tags("latest", false)]),
            rule(Template::LatestPushed(1), vec![tags("v*", false)]),
        ];
        assert_eq!(kept(&rules, &cs), [3]);
        let rules = [
            rule(Template::Always, vec![tags("latest", false)]),
            rule(Template::LatestPushed(1), vec![tags("v1", false)]),
        ];
        assert_eq!(kept(&rules, &cs), [1, 3]);
    }

    #[test]
    fn excludes_selects_artifacts_with_any_other_tag() {
        let cs = sample();
        let ex = TagSelector::Tags { excludes: true, pattern: pat("v*"), untagged: false };
        // 3 has `latest` besides `v3`; 5 has `dev-1`.
        assert_eq!(kept(&[rule(Template::Always, vec![ex])], &cs), [3, 5]);
        let ex = TagSelector::Tags { excludes: true, pattern: pat("v*"), untagged: true };
        assert_eq!(kept(&[rule(Template::Always, vec![ex])], &cs), [3, 4, 5]);
    }

    #[test]
    fn ties_break_by_the_later_row() {
        let cs = vec![cand(1, &["a"], 3, None), cand(2, &["b"], 3, None), cand(3, &["c"], 3, None)];
        assert_eq!(kept(&[rule(Template::LatestPushed(2), vec![tags("**", false)])], &cs), [2, 3]);
        assert_eq!(kept(&[rule(Template::LatestPulled(1), vec![tags("**", false)])], &cs), [3]);
    }

    #[test]
    fn labels_and_repositories() {
        let mut cs = sample();
        cs[0].labels = vec!["prod".into(), "gold".into()];
        cs[1].labels = vec!["prod".into()];
        let with = TagSelector::Labels { without: false, names: vec!["prod".into(), "gold".into()] };
        assert_eq!(kept(&[rule(Template::Always, vec![tags("**", true), with])], &cs), [1]);
        let without = TagSelector::Labels { without: true, names: vec!["prod".into()] };
        assert_eq!(kept(&[rule(Template::Always, vec![tags("**", true), without])], &cs), [3, 4, 5]);

        let mut r = rule(Template::Always, vec![]);
        r.repositories = vec![(false, pat("team/**")), (true, pat("team/tmp-*"))];
        assert!(r.covers("team/app") && r.covers("team/a/b"));
        assert!(!r.covers("team/tmp-1") && !r.covers("other"));
        r.disabled = true;
        assert!(!r.covers("team/app"));
        let rules = [r, rule(Template::Always, vec![])];
        assert_eq!(rules_for(&rules, "team/app").len(), 1);
    }
}
