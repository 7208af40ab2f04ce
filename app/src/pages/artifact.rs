//! One artifact (`…/repositories/<repo>/artifacts/<digest>`): its facts and tags, the layers
//! and config of an image, the platforms of an index, its referrers (signatures, SBOMs) and
//! the raw manifest.

use leptos::prelude::*;
use serde_json::Value;

use crate::components::format::{bytes, time_str};
use crate::components::page::{loading, CopyField, ErrorAlert, Outcome};
use crate::error::PortalError;
use crate::i18n::{t, tv};
use crate::pages::labels::{usable_labels, ArtifactLabels};
use crate::pages::project::{OutcomeSignal, ProjectCtx, Reload};
use crate::rest::Artifact;
use crate::server_fns::api::{self, repo_path};

/// Everything the page shows, loaded together.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Detail {
    artifact: Artifact,
    /// The manifest exactly as pushed.
    manifest: String,
    /// An image's config (`Null` for other artifacts).
    config: Value,
    registry: String,
    /// The labels usable on the project's artifacts.
    labels: Vec<crate::rest::Label>,
}

async fn load(repo: String, digest: String) -> Result<Detail, PortalError> {
    let base = format!("{}/artifacts/{digest}", repo_path(&repo));
    let artifact: Artifact =
        api::get(format!("{base}?with_tag=true&with_accessory=true&with_label=true")).await?;
    let manifest = api::api("GET".into(), format!("{base}/additions/manifest"), None).await?.body;
    let m: Value = serde_json::from_str(&manifest).unwrap_or_default();
    let config = if m["config"]["mediaType"]
        .as_str()
        .is_some_and(|t| t.contains("image.config") || t.contains("container.image"))
    {
        api::get::<Value>(format!("{base}/additions/config")).await.unwrap_or_default()
    } else {
        Value::Null
    };
    let info: crate::rest::SystemInfo = api::get("/systeminfo".into()).await?;
    let labels = usable_labels(repo.split_once('/').map(|x| x.0).unwrap_or(&repo)).await?;
    Ok(Detail { artifact, manifest, config, registry: info.registry_url.unwrap_or_default(), labels })
}

/// A digest shortened for display: its algorithm and the first 12 hex digits.
pub fn short(d: &str) -> String {
    match d.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}", hex.chars().take(12).collect::<String>()),
        None => d.chars().take(19).collect(),
    }
}

/// The artifact `digest` of repository `full` (`project/repo`), loaded again when `reload` changes.
pub fn detail_resource(
    full: String,
    digest: String,
    reload: Reload,
) -> Resource<Result<Detail, PortalError>> {
    Resource::new(move || (full.clone(), digest.clone(), reload.get()), |(r, d, _)| load(r, d))
}

#[component]
pub fn ArtifactDetail(
    ctx: ProjectCtx,
    repo: String,
    digest: String,
    detail: Resource<Result<Detail, PortalError>>,
    reload: Reload,
) -> impl IntoView {
    let project = ctx.name();
    let outcome: OutcomeSignal = RwSignal::new(None);
    let (can_add, can_remove) = (ctx.can("artifact-label", "create"), ctx.can("artifact-label", "delete"));
    let full = format!("{project}/{repo}");
    let repo_href = format!("/harbor/projects/{project}/repositories/{repo}");
    let link_base = repo_href.clone();
    view! {
        <nav class="crumbs" aria-label=t("Repository")>
            <a href=format!("/harbor/projects/{project}/repositories")>{t("Repositories")}</a>
            " / "
            <a href=repo_href>{full.clone()}</a>
            " / "
            <span>{short(&digest)}</span>
        </nav>
        <Outcome result=outcome />
        <Transition fallback=loading>
            {move || {
                let full = full.clone();
                let link_base = link_base.clone();
                Suspend::new(async move {
                    match detail.await {
                        Ok(d) => {
                            let labels = view! {
                                <ArtifactLabels path=format!("{}/artifacts/{}", repo_path(&full), d.artifact.digest)
                                    attached=d.artifact.labels.clone().unwrap_or_default() usable=d.labels.clone()
                                    can_add can_remove outcome reload />
                            }
                            .into_any();
                            view! { <DetailBody d full link_base labels /> }.into_any()
                        }
                        Err(e) => view! { <ErrorAlert error=e /> }.into_any(),
                    }
                })
            }}
        </Transition>
    }
}

#[component]
fn DetailBody(d: Detail, full: String, link_base: String, labels: AnyView) -> impl IntoView {
    let a = d.artifact.clone();
    let m: Value = serde_json::from_str(&d.manifest).unwrap_or_default();
    let layers: Vec<Value> = m["layers"].as_array().cloned().unwrap_or_default();
    let children: Vec<Value> = m["manifests"].as_array().cloned().unwrap_or_default();
    let tags: Vec<String> = a.tags.clone().unwrap_or_default().into_iter().map(|t| t.name).collect();
    let accessories = a.accessories.clone().unwrap_or_default();
    let command = format!("docker pull {}/{}@{}", d.registry, full, a.digest);
    // REST's `type` (Harbor's: an index is an IMAGE), and whether it is an index.
    let (kind, index) = (a.kind.clone(), a.is_index());
    let config = d.config.clone();
    let c = &config["config"];
    let platform = match (config["os"].as_str(), config["architecture"].as_str()) {
        (Some(os), Some(arch)) => {
            format!("{os}/{arch}{}", config["variant"].as_str().map(|v| format!("/{v}")).unwrap_or_default())
        }
        _ => String::new(),
    };
    let joined = |v: &Value| {
        v.as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    let entrypoint = joined(&c["Entrypoint"]);
    let cmd = joined(&c["Cmd"]);
    let env: Vec<String> = c["Env"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let history: Vec<Value> = config["history"].as_array().cloned().unwrap_or_default();
    let created = config["created"].as_str().unwrap_or_default().to_string();
    let has_config = !config.is_null();
    view! {
        <h2 class="repo-title" data-testid="artifact-digest">{a.digest.clone()}</h2>
        <CopyField value=a.digest.clone() label=t("Digest") testid="digest-copy" />
        <div class="panels">
            <section class="card" aria-labelledby="facts-h">
                <h2 id="facts-h">{t("Overview")}</h2>
                <dl class="facts" data-testid="artifact-facts">
                    <dt>{t("Type")}</dt><dd>{tv(&kind)}{index.then(|| view! { " · " {tv("INDEX")} })}</dd>
                    <dt>{t("Media type")}</dt><dd class="wrap"><code>{a.media_type.clone()}</code></dd>
                    {(!a.artifact_type.is_empty()).then(|| view! { <dt>{t("Artifact type")}</dt><dd class="wrap"><code>{a.artifact_type.clone()}</code></dd> })}
                    <dt>{t("Size")}</dt><dd>{bytes(a.size)}</dd>
                    <dt>{t("Push time")}</dt><dd>{time_str(&a.push_time)}</dd>
                    <dt>{t("Pull time")}</dt><dd>{time_str(&a.pull_time)}</dd>
                    <dt>{t("Pulls")}</dt><dd>{a.pull_count}</dd>
                    <dt>{t("Tags")}</dt>
                    <dd>
                        {if tags.is_empty() {
                            view! { <span class="muted">"—"</span> }.into_any()
                        } else {
                            tags.iter().map(|tg| view! { <span class="badge badge-tag">{tg.clone()}</span> " " }).collect_view().into_any()
                        }}
                    </dd>
                    <dt>{t("Labels")}</dt>
                    <dd>{labels}</dd>
                </dl>
                <CopyField value=command label=t("Pull command") testid="pull-command" />
            </section>
            {has_config.then(|| view! {
                <section class="card" aria-labelledby="config-h">
                    <h2 id="config-h">{t("Config")}</h2>
                    <dl class="facts" data-testid="artifact-config">
                        {(!platform.is_empty()).then(|| view! { <dt>{t("OS/Arch")}</dt><dd>{platform.clone()}</dd> })}
                        {(!created.is_empty()).then(|| view! { <dt>{t("Created")}</dt><dd>{time_str(&created)}</dd> })}
                        {(!entrypoint.is_empty()).then(|| view! { <dt>"Entrypoint"</dt><dd class="wrap"><code>{entrypoint.clone()}</code></dd> })}
                        {(!cmd.is_empty()).then(|| view! { <dt>"Cmd"</dt><dd class="wrap"><code>{cmd.clone()}</code></dd> })}
                        {(!env.is_empty()).then(|| view! {
                            <dt>{t("Environment")}</dt>
                            <dd class="wrap">{env.iter().map(|e| view! { <code>{e.clone()}</code><br /> }).collect_view()}</dd>
                        })}
                    </dl>
                </section>
            })}
        </div>
        {(!layers.is_empty()).then(|| view! {
            <h2>{t("Layers")}</h2>
            <div class="table-wrap">
                <table class="table" data-testid="layer-table">
                    <thead><tr>
                        <th scope="col" class="num">"#"</th>
                        <th scope="col">{t("Digest")}</th>
                        <th scope="col">{t("Media type")}</th>
                        <th scope="col" class="num">{t("Size")}</th>
                    </tr></thead>
                    <tbody>
                        {layers.iter().enumerate().map(|(i, l)| view! {
                            <tr data-testid="layer-row">
                                <td class="num">{i + 1}</td>
                                <td><code title=l["digest"].as_str().unwrap_or_default().to_string()>{short(l["digest"].as_str().unwrap_or_default())}</code></td>
                                <td><code>{l["mediaType"].as_str().unwrap_or_default().to_string()}</code></td>
                                <td class="num">{bytes(l["size"].as_i64().unwrap_or(0))}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        })}
        {(!children.is_empty()).then(|| view! {
            <h2>{t("Platforms")}</h2>
            <div class="table-wrap">
                <table class="table" data-testid="platform-table">
                    <thead><tr>
                        <th scope="col">{t("Digest")}</th>
                        <th scope="col">{t("OS/Arch")}</th>
                        <th scope="col" class="num">{t("Size")}</th>
                    </tr></thead>
                    <tbody>
                        {children.iter().map(|c| {
                            let digest = c["digest"].as_str().unwrap_or_default().to_string();
                            let p = &c["platform"];
                            let plat = [p["os"].as_str(), p["architecture"].as_str(), p["variant"].as_str()].into_iter().flatten().collect::<Vec<_>>().join("/");
                            view! {
                                <tr data-testid="platform-row">
                                    <td><a href=format!("{link_base}/artifacts/{digest}")><code title=digest.clone()>{short(&digest)}</code></a></td>
                                    <td>{if plat.is_empty() { "—".to_string() } else { plat }}</td>
                                    <td class="num">{bytes(c["size"].as_i64().unwrap_or(0))}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        })}
        <h2>{t("Referrers (signatures, SBOMs)")}</h2>
        {if accessories.is_empty() {
            view! { <p class="muted" data-testid="no-referrers">{t("Nothing refers to this artifact.")}</p> }.into_any()
        } else {
            view! {
                <div class="table-wrap">
                    <table class="table" data-testid="referrer-table">
                        <thead><tr>
                            <th scope="col">{t("Digest")}</th>
                            <th scope="col">{t("Type")}</th>
                            <th scope="col">{t("Artifact type")}</th>
                            <th scope="col" class="num">{t("Size")}</th>
                            <th scope="col">{t("Creation time")}</th>
                        </tr></thead>
                        <tbody>
                            {accessories.iter().map(|x| view! {
                                <tr data-testid="referrer-row">
                                    <td><a href=format!("{link_base}/artifacts/{}", x.digest)><code title=x.digest.clone()>{short(&x.digest)}</code></a></td>
                                    <td>{x.kind.clone()}</td>
                                    <td><code>{x.artifact_type.clone()}</code></td>
                                    <td class="num">{bytes(x.size)}</td>
                                    <td>{time_str(&x.creation_time)}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any()
        }}
        {(!history.is_empty()).then(|| view! {
            <h2>{t("Build history")}</h2>
            <div class="table-wrap">
                <table class="table" data-testid="history-table">
                    <thead><tr><th scope="col">{t("Created")}</th><th scope="col">{t("Command")}</th></tr></thead>
                    <tbody>
                        {history.iter().map(|h| view! {
                            <tr>
                                <td>{time_str(h["created"].as_str().unwrap_or_default())}</td>
                                <td class="wrap"><code>{h["created_by"].as_str().unwrap_or_default().to_string()}</code></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        })}
        <details class="raw">
            <summary>{t("Manifest (raw)")}</summary>
            <pre data-testid="raw-manifest">{d.manifest.clone()}</pre>
        </details>
    }
}
