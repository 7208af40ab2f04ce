//! `/v2/_catalog` and `/v2/<name>/tags/list`, with distribution's `n`/`last` paging.

use super::*;

pub(super) fn page_params(pairs: &[(String, String)]) -> OciResult<(i64, Option<String>)> {
    let n = match query(pairs, "n") {
        None | Some("") => DEFAULT_PAGE,
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| OciError::new(Code::PaginationNumberInvalid, format!("invalid n {v:?}")))?
            .min(MAX_PAGE),
    };
    Ok((n, query(pairs, "last").filter(|l| !l.is_empty()).map(str::to_string)))
}

pub(super) fn next_link(path: &str, n: i64, last: &str) -> HeaderValue {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("n", &n.to_string())
        .append_pair("last", last)
        .finish();
    hv(&format!("<{path}?{q}>; rel=\"next\""))
}

pub(super) async fn catalog(
    state: &AppState,
    who: &RegistryCaller,
    pairs: &[(String, String)],
) -> OciResult<Response> {
    // Tokens need `registry:catalog:*` (system admins only); Basic callers see the projects
    // they may see.
    let viewer = match &who.cred {
        Credential::Token(c) if c.allows_catalog() => None,
        Credential::Basic(p) => Some(p),
        Credential::Token(c) if !c.anonymous() => {
            return Err(challenge_error(
                state,
                &who.ctx,
                Code::Denied,
                "the catalog is for system admins",
                Some("registry:catalog:*"),
                Some("insufficient_scope"),
            ))
        }
        _ => {
            return Err(challenge_error(
                state,
                &who.ctx,
                Code::Unauthorized,
                "authentication required",
                Some("registry:catalog:*"),
                None,
            ))
        }
    };
    let (n, last) = page_params(pairs)?;
    let repos =
        if n == 0 { vec![] } else { meta::catalog(&state.db, viewer, n + 1, last.as_deref()).await? };
    let more = repos.len() as i64 > n;
    let repos: Vec<_> = repos.into_iter().take(n as usize).collect();
    let mut resp = axum::Json(json!({ "repositories": repos })).into_response();
    if more {
        if let Some(l) = repos.last() {
            resp.headers_mut().insert(header::LINK, next_link("/v2/_catalog", n, l));
        }
    }
    Ok(resp)
}

pub(super) async fn tags_list(
    state: &AppState,
    who: &RegistryCaller,
    name: &str,
    pairs: &[(String, String)],
) -> OciResult<Response> {
    authorize(state, who, name, Action::Pull).await?;
    if !meta::repository_exists(&state.db, name).await? {
        return Err(OciError::new(Code::NameUnknown, format!("repository {name:?} not found")));
    }
    let (n, last) = page_params(pairs)?;
    let tags = if n == 0 { vec![] } else { meta::tags(&state.db, name, n + 1, last.as_deref()).await? };
    let more = tags.len() as i64 > n;
    let tags: Vec<_> = tags.into_iter().take(n as usize).collect();
    let mut resp = axum::Json(json!({ "name": name, "tags": tags })).into_response();
    if more {
        if let Some(l) = tags.last() {
            resp.headers_mut().insert(header::LINK, next_link(&format!("/v2/{name}/tags/list"), n, l));
        }
    }
    Ok(resp)
}
