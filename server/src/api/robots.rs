//! Robot accounts under `/api/v2.0/robots` (Harbor's robot API v2).
//!
//! A system robot (`level: system`) is managed by system admins; a project robot
//! (`level: project`, exactly one permission entry naming its project) by whoever holds
//! `robot` permissions in that project. **Nobody can give a robot a right they do not hold
//! themselves in that project**, nor a longer life than their own (a robot caller), and
//! nobody may change the secret, lifetime, state or rights of a robot holding a right they
//! do not hold (`require_covers`): a new secret would hand them that right.

use std::collections::{BTreeMap, HashMap};

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::error::{ApiError, AppJson, AppPath, AppQuery};
use crate::api::projects::require;
use crate::api::{pagination_headers, Pagination};
use crate::auth::Caller;
use crate::db::rfc3339;
use crate::projects::{self, Project};
use crate::rbac::{Act, Resource};
use crate::robots::{self, NewRobot, Robot, RobotUpdate};
use crate::state::AppState;

pub use app::rest::robots::{
    AccessReq, AccessResp, PermissionReq, RobotCreate, RobotCreated, RobotPermissionResp, RobotPut,
    RobotResp, RobotSec, SecretReq,
};

/// `creator_type` and `creator_ref` of each distinct creator of `robots`.
async fn creators(state: &AppState, robots: &[Robot]) -> Result<HashMap<String, (String, i64)>, ApiError> {
    let mut out = HashMap::new();
    for r in robots {
        if out.contains_key(&r.creator) {
            continue;
        }
        let found = if r.creator.starts_with("robot$") {
            ("robot", robots::id_by_name(&state.db, &r.creator).await?)
        } else {
            ("local", crate::accounts::get_by_name(&state.db, &r.creator).await?.map(|u| u.id))
        };
        out.insert(r.creator.clone(), (found.0.to_string(), found.1.unwrap_or(0)));
    }
    Ok(out)
}

async fn robots_json(state: &AppState, robots: &[Robot]) -> Result<Vec<RobotResp>, ApiError> {
    let who = creators(state, robots).await?;
    Ok(robots
        .iter()
        .map(|r| {
            let mut j = robot_json(r);
            if let Some((t, id)) = who.get(&r.creator) {
                (j.creator_type, j.creator_ref) = (t.clone(), *id);
            }
            j
        })
        .collect())
}

fn robot_json(r: &Robot) -> RobotResp {
    // Harbor groups permissions per namespace.
    let mut by_ns: BTreeMap<&str, Vec<AccessResp>> = BTreeMap::new();
    for p in &r.permissions {
        by_ns.entry(&p.namespace).or_default().push(AccessResp {
            resource: p.resource.clone(),
            action: p.action.clone(),
            effect: "allow".into(),
        });
    }
    RobotResp {
        id: r.id,
        name: r.name.clone(),
        description: r.description.clone(),
        level: r.level().into(),
        duration: r.duration,
        editable: true,
        disable: r.disabled,
        expires_at: if r.expires_at < 0 { -1 } else { r.expires_at / 1000 },
        creator: r.creator.clone(),
        creator_type: if r.creator.starts_with("robot$") { "robot" } else { "local" }.into(),
        creator_ref: 0,
        creation_time: rfc3339(r.created_at),
        update_time: rfc3339(r.updated_at),
        permissions: by_ns
            .into_iter()
            .map(|(ns, access)| RobotPermissionResp { kind: "project".into(), namespace: ns.into(), access })
            .collect(),
    }
}

type Perms = Vec<(Option<i64>, Resource, Act)>;

/// Resolves and checks a permission list. For project robots it must name exactly `project`.
/// The caller must hold each right in each project named (system admins hold all).
async fn check_permissions(
    state: &AppState,
    caller: &Caller,
    reqs: &[PermissionReq],
    project: Option<&Project>,
) -> Result<Perms, ApiError> {
    if reqs.is_empty() {
        return Err(ApiError::BadRequest("permissions must not be empty".into()));
    }
    let mut out = Vec::new();
    for pr in reqs {
        if pr.kind.as_deref().is_some_and(|k| k != "project") {
            return Err(ApiError::BadRequest("permission kind must be \"project\"".into()));
        }
        let target = if pr.namespace == "*" {
            if project.is_some() {
                return Err(ApiError::BadRequest("a project robot cannot cover every project".into()));
            }
            None
        } else {
            let p = projects::get_by_name(&state.db, &pr.namespace)
                .await?
                .ok_or_else(|| ApiError::BadRequest(format!("project {:?} does not exist", pr.namespace)))?;
            if project.is_some_and(|own| own.id != p.id) {
                return Err(ApiError::BadRequest(
                    "a project robot can only hold permissions in its project".into(),
                ));
            }
            Some(p)
        };
        if target.is_none() && !caller.require_principal()?.is_sysadmin() {
            return Err(ApiError::Forbidden("only system admins may grant rights in every project".into()));
        }
        if pr.access.is_empty() {
            return Err(ApiError::BadRequest(format!("no access listed for namespace {:?}", pr.namespace)));
        }
        for a in &pr.access {
            let res = Resource::parse(&a.resource)
                .ok_or_else(|| ApiError::BadRequest(format!("unknown resource {:?}", a.resource)))?;
            let act = Act::parse(&a.action)
                .ok_or_else(|| ApiError::BadRequest(format!("unknown action {:?}", a.action)))?;
            if let Some(p) = &target {
                require(state, caller, p, res, act).await?;
            }
            out.push((target.as_ref().map(|p| p.id), res, act));
        }
    }
    Ok(out)
}

/// Refuses unless the caller holds every right `robot` holds: changing the secret of a
/// stronger robot would hand its rights to the caller, and changing its life or state would
/// manage a principal stronger than oneself.
async fn require_covers(state: &AppState, caller: &Caller, robot: &Robot) -> Result<(), ApiError> {
    let who = caller.require_principal()?;
    if who.is_sysadmin() {
        return Ok(());
    }
    let refused = || {
        ApiError::Forbidden(format!(
            "{} holds rights you do not hold; only a stronger account may change it",
            robot.name
        ))
    };
    for p in &robot.permissions {
        let (Some(res), Some(act), Some(pid)) =
            (Resource::parse(&p.resource), Act::parse(&p.action), p.project_id)
        else {
            return Err(refused());
        };
        let Some(project) = projects::get(&state.db, pid).await? else { continue };
        require(state, caller, &project, res, act).await.map_err(|_| refused())?;
    }
    Ok(())
}

/// Refuses a robot expiry (`-1`: never) later than a robot caller's own: a robot cannot make
/// a robot, itself included, outlive it. Users do not expire.
fn require_lifetime(caller: &Caller, expires_at: i64) -> Result<(), ApiError> {
    if let Some(crate::rbac::Principal::Robot(me)) = &caller.principal {
        if me.expires_at >= 0 && (expires_at < 0 || expires_at > me.expires_at) {
            return Err(ApiError::Forbidden(format!(
                "{} cannot give a robot a longer life than its own",
                me.name
            )));
        }
    }
    Ok(())
}

/// `POST /api/v2.0/robots`: 201 with the secret (shown this once).
#[utoipa::path(post, path = "/robots", tag = "robot", request_body = RobotCreate, responses((status = 201, body = RobotCreated), (status = 400), (status = 403), (status = 409)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    AppJson(req): AppJson<RobotCreate>,
) -> Result<impl IntoResponse, ApiError> {
    let who = caller.require_principal()?;
    let project = match req.level.as_str() {
        "system" => {
            caller.require_sysadmin()?;
            None
        }
        "project" => {
            let [only] = req.permissions.as_slice() else {
                return Err(ApiError::BadRequest("a project robot has exactly one permission entry".into()));
            };
            let p = projects::get_by_name(&state.db, &only.namespace).await?.ok_or_else(|| {
                ApiError::BadRequest(format!("project {:?} does not exist", only.namespace))
            })?;
            require(&state, &caller, &p, Resource::Robot, Act::Create).await?;
            Some(p)
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "level must be \"system\" or \"project\", not {other:?}"
            )))
        }
    };
    let permissions = check_permissions(&state, &caller, &req.permissions, project.as_ref()).await?;
    let duration = match req.duration {
        Some(d) => d,
        None => crate::settings::load(&state.db, &state.config).await?.robot_token_duration,
    };
    require_lifetime(&caller, robots::expiry(crate::db::now_ms(), duration))?;
    let (robot, secret) = robots::create(
        &state.db,
        NewRobot {
            name: req.name,
            description: req.description,
            project: project.as_ref().map(|p| (p.id, p.name.clone())),
            duration,
            permissions,
            creator: who.name().to_string(),
        },
    )
    .await?;
    let robot = if req.disable {
        robots::update(
            &state.db,
            robot.id,
            RobotUpdate { description: None, disabled: Some(true), duration: None, permissions: None },
        )
        .await?
    } else {
        robot
    };
    state
        .audit
        .record(caller.event("create", "robot", &robot.name).in_project(project.as_ref().map(|p| p.id)));
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v2.0/robots/{}", robot.id)) {
        h.insert(header::LOCATION, v);
    }
    Ok((
        StatusCode::CREATED,
        h,
        Json(RobotCreated {
            id: robot.id,
            name: robot.name.clone(),
            secret,
            creation_time: rfc3339(robot.created_at),
            expires_at: if robot.expires_at < 0 { -1 } else { robot.expires_at / 1000 },
        }),
    ))
}

/// Loads a robot and checks the caller may do `act` on it (system admins for system robots,
/// `robot` rights in the project for project robots). Robots not visible answer 404.
async fn load(state: &AppState, caller: &Caller, id: i64, act: Act) -> Result<Robot, ApiError> {
    caller.require_principal()?;
    let robot = robots::get(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("robot account not found".into()))?;
    match robot.project_id {
        None => {
            caller.require_sysadmin()?;
        }
        Some(pid) => {
            let p = projects::get(&state.db, pid)
                .await?
                .ok_or_else(|| ApiError::NotFound("robot account not found".into()))?;
            require(state, caller, &p, Resource::Robot, act).await?;
        }
    }
    Ok(robot)
}

/// `GET /api/v2.0/robots/{robot_id}`
#[utoipa::path(get, path = "/robots/{robot_id}", tag = "robot", params(("robot_id" = i64, Path)), responses((status = 200, body = RobotResp), (status = 403), (status = 404)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<Json<RobotResp>, ApiError> {
    let r = load(&state, &caller, id, Act::Read).await?;
    Ok(Json(robots_json(&state, std::slice::from_ref(&r)).await?.remove(0)))
}

/// `PUT /api/v2.0/robots/{robot_id}`: description, duration, disable, permissions.
#[utoipa::path(put, path = "/robots/{robot_id}", tag = "robot", params(("robot_id" = i64, Path)), request_body = RobotPut, responses((status = 200), (status = 400), (status = 403), (status = 404)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<RobotPut>,
) -> Result<StatusCode, ApiError> {
    let robot = load(&state, &caller, id, Act::Update).await?;
    require_covers(&state, &caller, &robot).await?;
    if let Some(d) = req.duration.filter(|d| *d != robot.duration) {
        require_lifetime(&caller, robots::expiry(robot.created_at, d))?;
    }
    let project = match robot.project_id {
        Some(pid) => projects::get(&state.db, pid).await?,
        None => None,
    };
    let permissions = match &req.permissions {
        Some(p) => Some(check_permissions(&state, &caller, p, project.as_ref()).await?),
        None => None,
    };
    let updated = robots::update(
        &state.db,
        id,
        RobotUpdate {
            description: req.description,
            disabled: req.disable,
            duration: req.duration,
            permissions,
        },
    )
    .await?;
    let detail = if updated.disabled { "disabled" } else { "" };
    state
        .audit
        .record(caller.event("update", "robot", &updated.name).detail(detail).in_project(robot.project_id));
    Ok(StatusCode::OK)
}

/// `PATCH /api/v2.0/robots/{robot_id}`: a new secret (given, or generated and returned).
#[utoipa::path(patch, path = "/robots/{robot_id}", tag = "robot", params(("robot_id" = i64, Path)), request_body = SecretReq, responses((status = 200, body = RobotSec), (status = 403), (status = 404)))]
pub async fn refresh(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
    AppJson(req): AppJson<SecretReq>,
) -> Result<Json<RobotSec>, ApiError> {
    let robot = load(&state, &caller, id, Act::Update).await?;
    require_covers(&state, &caller, &robot).await?;
    let given = req.secret.is_some();
    let secret = robots::refresh_secret(&state.db, id, req.secret).await?;
    state.audit.record(
        caller.event("update", "robot", &robot.name).detail("secret refreshed").in_project(robot.project_id),
    );
    Ok(Json(RobotSec { secret: (!given).then_some(secret) }))
}

/// `DELETE /api/v2.0/robots/{robot_id}`
#[utoipa::path(delete, path = "/robots/{robot_id}", tag = "robot", params(("robot_id" = i64, Path)), responses((status = 200), (status = 403), (status = 404)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    AppPath(id): AppPath<i64>,
) -> Result<StatusCode, ApiError> {
    let robot = load(&state, &caller, id, Act::Delete).await?;
    robots::delete(&state.db, id).await?;
    state.audit.record(caller.event("delete", "robot", &robot.name).in_project(robot.project_id));
    Ok(StatusCode::OK)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    pub q: Option<String>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

/// `GET /api/v2.0/robots?q=Level=project,ProjectID=1` (project robots, for those with robot
/// rights there) or `q=Level=system` / no `q` (system robots, system admins only); `name=~x`
/// filters by name.
#[utoipa::path(get, path = "/robots", tag = "robot", params(ListParams), responses((status = 200, body = [RobotResp]), (status = 400), (status = 403)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    OriginalUri(uri): OriginalUri,
    AppQuery(params): AppQuery<ListParams>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_principal()?;
    let (page, page_size) = Pagination { page: params.page, page_size: params.page_size }.resolve()?;
    let (mut level, mut project_id, mut name) = (None::<String>, None::<i64>, None::<String>);
    for part in params.q.as_deref().unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) =
            part.split_once('=').ok_or_else(|| ApiError::BadRequest(format!("invalid query {part:?}")))?;
        match k.trim() {
            "Level" | "level" => level = Some(v.trim().to_string()),
            "ProjectID" | "project_id" => {
                project_id = Some(
                    v.trim()
                        .parse()
                        .map_err(|_| ApiError::BadRequest("ProjectID must be a number".into()))?,
                )
            }
            "name" | "Name" => name = Some(v.trim().trim_start_matches('~').to_string()),
            other => return Err(ApiError::BadRequest(format!("unknown query key {other:?}"))),
        }
    }
    let scope = match (level.as_deref(), project_id) {
        (Some("project") | None, Some(pid)) => {
            let p = projects::get(&state.db, pid)
                .await?
                .ok_or_else(|| ApiError::NotFound("project not found".into()))?;
            require(&state, &caller, &p, Resource::Robot, Act::List).await?;
            Some(pid)
        }
        (Some("system") | None, None) => {
            caller.require_sysadmin()?;
            None
        }
        _ => return Err(ApiError::BadRequest("use q=Level=system or q=Level=project,ProjectID=<id>".into())),
    };
    let (items, total) = robots::list(&state.db, scope, name.as_deref(), page, page_size).await?;
    Ok((pagination_headers(&uri, page, page_size, total), Json(robots_json(&state, &items).await?)))
}
