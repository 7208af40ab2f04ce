# shellcheck shell=bash
# The OIDC step of identity.sh (sourced; uses its helpers). See identity.sh's header.

say ""
say "==> oidc: oidc-provider (scripts/services.sh start oidc), berth in oidc_auth"
mkdir -p "$WORKDIR/svc-oidc"
# Short-lived access tokens, so that berth must refresh (and notices a revocation) within seconds.
OIDC_TTL=${OIDC_TTL:-5}
eval "$(OIDC_ACCESS_TOKEN_TTL=$OIDC_TTL "$ROOT/scripts/services.sh" start oidc "$WORKDIR/svc-oidc")" \
  || die "the OIDC provider did not start"
: "${TEST_BERTH_OIDC_ISSUER:?}" "${TEST_BERTH_OIDC_CLIENT_ID:?}" "${TEST_BERTH_OIDC_CLIENT_SECRET:?}"
[[ $TEST_BERTH_OIDC_ISSUER =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || die "issuer $TEST_BERTH_OIDC_ISSUER is not on 127.0.0.1"
# The provider's static accounts (scripts/oidc-provider/provider.js).
declare -A OPW=([olivia]=${TEST_BERTH_OIDC_PASSWORD_olivia:-Olivia-pass-1} [otto]=${TEST_BERTH_OIDC_PASSWORD_otto:-Otto-pass-1})
SECRETS+=("$TEST_BERTH_OIDC_CLIENT_SECRET" "${OPW[@]}")
OIDC_LOGIN_PATH=${OIDC_LOGIN_PATH:-/c/oidc/login}

start_berth oidc
api_ok 200 PUT /configurations "$(jq -nc --arg ep "$TEST_BERTH_OIDC_ISSUER" --arg id "$TEST_BERTH_OIDC_CLIENT_ID" \
  --arg sec "$TEST_BERTH_OIDC_CLIENT_SECRET" \
  '{auth_mode:"oidc_auth", oidc_name:"Test provider", oidc_endpoint:$ep, oidc_client_id:$id,
    oidc_client_secret:$sec, oidc_groups_claim:"groups", oidc_scope:"openid,offline_access,profile,email,groups",
    oidc_user_claim:"preferred_username", oidc_auto_onboard:true, oidc_verify_cert:true}')"
api_ok 200 GET /configurations
check "GET /configurations auth_mode" "$(jq -r '.auth_mode.value // .auth_mode' <<<"$API_BODY")" oidc_auth
api_ok 201 POST /projects '{"project_name":"oidp","metadata":{"public":"false"}}'
api_ok 201 POST /usergroups '{"group_name":"developers","group_type":3}'
OGID=${API_LOCATION##*/}
[[ $OGID =~ ^[0-9]+$ ]] || die "POST /usergroups (OIDC): no id in Location '$API_LOCATION'"
api_ok 201 POST /projects/oidp/members "$(jq -nc --argjson g "$OGID" '{role_id:2,member_group:{id:$g}}')"
say "    oidp (private): OIDC group developers (id $OGID) = developer"

# -------------------------------------------------- the browser-less login, the CLI secret
CLI_SECRET="Cli$(od -An -tx1 -N6 /dev/urandom | tr -d ' \n')Z9"
SECRETS+=("$CLI_SECRET")
oidc_login() { # USER [args...]: identity_oidc.py login; JSON in OIDC_JSON
  local u=$1; shift
  OIDC_JSON=""
  run python3 "$HERE/identity_oidc.py" login "http://$R" "$u" "${OPW[$u]}" --login-path "$OIDC_LOGIN_PATH" "$@" \
    && OIDC_JSON=$(tail -n 1 "$OUT")
}
if oidc_login olivia --bad-password --set-secret "$CLI_SECRET"; then
  ok "olivia: login through the provider's form (a wrong password first gets the form again), back on berth: $(jq -c .redirects <<<"$OIDC_JSON")"
  check "olivia onboarded as" "$(jq -r .username <<<"$OIDC_JSON")" olivia
  sb=$(jq -r .secret_before <<<"$OIDC_JSON")
  if [ ${#sb} -ge 8 ]; then ok "olivia's generated CLI secret in oidc_user_meta.secret (${#sb} characters)"
  else bad "olivia's generated CLI secret: '$sb' (expected one of at least 8 characters)"; fi
  SECRETS+=("$sb")
  check "PUT /users/{id}/cli_secret with the session's CSRF token: status" "$(jq -r .set_status <<<"$OIDC_JSON")" 200
  check "oidc_user_meta.secret after the PUT is the new one" "$(jq -r .secret <<<"$OIDC_JSON")" "$CLI_SECRET"
  token olivia "$sb" repository:oidp/app:pull
  check "the replaced CLI secret no longer works: status" "$TOKEN_STATUS" 401
else
  bad "olivia: browser-less OIDC login"; tail_out "$OUT"
fi
if oidc_login otto; then check "otto onboarded as" "$(jq -r .username <<<"$OIDC_JSON")" otto
  OTTO_SECRET=$(jq -r .secret <<<"$OIDC_JSON"); SECRETS+=("$OTTO_SECRET")
else bad "otto: browser-less OIDC login"; tail_out "$OUT"; OTTO_SECRET=none; fi

token olivia "$CLI_SECRET" repository:oidp/app:pull,push
check "olivia's token with her CLI secret (groups claim: developers)" "$TOKEN_ACTIONS" "pull,push"
token otto "$OTTO_SECRET" repository:oidp/app:pull,push
check "otto's token with his CLI secret (no groups)" "$TOKEN_ACTIONS" "none"
token olivia "${OPW[olivia]}" repository:oidp/app:pull
check "olivia's provider password at the token service (only the CLI secret counts): status" "$TOKEN_STATUS" 401

start_dockerd
for t in oidc-docker oidc-otto; do mkimg "$t" >/dev/null; docker_load "$t"; done
RUN_INPUT=${OPW[olivia]}
denied "docker login olivia with her provider password" dk olivia-pw login -u olivia --password-stdin "$R"
if docker_login olivia olivia "$CLI_SECRET"; then ok "docker login olivia with her CLI secret"
else bad "docker login olivia with her CLI secret failed"; tail_out "$OUT"; fi
docker_push_pull olivia olivia oidp/docker oidc-docker
if docker_login otto otto "$OTTO_SECRET"; then ok "docker login otto with his CLI secret"
else bad "docker login otto with his CLI secret failed"; tail_out "$OUT"; fi
dk otto tag e2e/oidc-otto:v1 "$R/oidp/otto:v1"
denied "otto (no group) docker push oidp/otto:v1" dk otto push "$R/oidp/otto:v1"

# -------------------------------------------------- revoked at the provider
curl -sS -X POST "$TEST_BERTH_OIDC_ISSUER/test/revoke?user=olivia" -o "$WORKDIR/tmp/rev" -w '%{http_code}' >"$WORKDIR/tmp/rev.code" 2>>"$LOG" || true
check "provider: revoke olivia's grants" "$(cat "$WORKDIR/tmp/rev.code") $(jq -r '.revoked >= 1' "$WORKDIR/tmp/rev")" "200 true"
t1=$(date +%s) limit=$((OIDC_TTL + CACHE_S + 20)) last=""
while :; do
  token olivia "$CLI_SECRET" repository:oidp/app:pull
  last=$TOKEN_STATUS
  [ "$last" = 200 ] || break
  [ $(($(date +%s) - t1)) -lt "$limit" ] || break
  sleep 1
done
check "olivia's CLI secret after the revocation (refresh refused), within ${limit}s: status" "$last" 401
say "    refused $(($(date +%s) - t1)) s after the revocation (access tokens live ${OIDC_TTL}s, auth.directory_cache ${CACHE_S}s)"
RUN_INPUT=$CLI_SECRET
denied "docker login olivia with her CLI secret after the revocation" dk olivia-2 login -u olivia --password-stdin "$R"
token otto "$OTTO_SECRET" repository:oidp/app:pull
check "otto's CLI secret still works (his grants were not revoked): status" "$TOKEN_STATUS" 200
