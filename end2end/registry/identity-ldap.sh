# shellcheck shell=bash
# The LDAP step of identity.sh (sourced; uses its helpers). See identity.sh's header.

say ""
say "==> ldap: slapd (scripts/services.sh start slapd), berth in ldap_auth"
mkdir -p "$WORKDIR/svc-ldap"
eval "$("$ROOT/scripts/services.sh" start slapd "$WORKDIR/svc-ldap")" || die "slapd did not start"
# What the slapd service provides (scripts/services.sh start_slapd; seed: scripts/ldap/seed.ldif:
# developers = alice, bob; admins = carol; dave only in a posixGroup; eve in no group; every
# password is <name>-Pass-1).
: "${TEST_BERTH_LDAPS_URL:?}" "${TEST_BERTH_LDAP_URL:?}" "${TEST_BERTH_LDAP_BASE_DN:?}" "${TEST_BERTH_LDAP_CA:?}" \
  "${TEST_BERTH_LDAP_SEARCH_DN:?}" "${TEST_BERTH_LDAP_SEARCH_PASSWORD:?}" "${TEST_BERTH_LDAP_ADMIN_DN:?}" \
  "${TEST_BERTH_LDAP_ADMIN_PASSWORD:?}"
LB=$TEST_BERTH_LDAP_BASE_DN
declare -A LPW
for u in alice bob dave eve; do LPW[$u]=$u-Pass-1; done
SECRETS+=("$TEST_BERTH_LDAP_ADMIN_PASSWORD" "$TEST_BERTH_LDAP_SEARCH_PASSWORD" "${LPW[@]}")
PEOPLE=ou=people,$LB GROUPS_DN=ou=groups,$LB
DEV_DN="cn=developers,$GROUPS_DN" ALICE_DN="uid=alice,$PEOPLE"
ldap_admin() { local c=$1; shift; timeout 30 "$c" -x -H "$TEST_BERTH_LDAP_URL" -D "$TEST_BERTH_LDAP_ADMIN_DN" -w "$TEST_BERTH_LDAP_ADMIN_PASSWORD" "$@"; }
# is_member DN: whether the developers group lists DN as member (read from slapd itself)
is_member() {
  ldap_admin ldapsearch -LLL -b "$DEV_DN" -s base member 2>>"$LOG" | tr -d '\n ' | grep -i "member:${1// /}" >/dev/null
}
# group_member add|delete: ldapmodify of alice's membership in developers
group_member() {
  printf 'dn: %s\nchangetype: modify\n%s: member\nmember: %s\n' "$DEV_DN" "$1" "$ALICE_DN" >"$WORKDIR/tmp/mod.ldif"
  run ldap_admin ldapmodify -f "$WORKDIR/tmp/mod.ldif" || { tail_out "$OUT"; die "ldapmodify $1 member alice"; }
}
is_member "$ALICE_DN" || die "the seeded directory does not have alice in $DEV_DN"
is_member "uid=eve,$PEOPLE" && die "the seeded directory has eve in $DEV_DN (she must not be)"

start_berth ldap
api_ok 200 PUT /configurations "$(jq -nc --arg url "$TEST_BERTH_LDAPS_URL" --arg sdn "$TEST_BERTH_LDAP_SEARCH_DN" \
  --arg spw "$TEST_BERTH_LDAP_SEARCH_PASSWORD" --arg base "$PEOPLE" --arg gbase "$GROUPS_DN" --rawfile ca "$TEST_BERTH_LDAP_CA" \
  '{auth_mode:"ldap_auth", ldap_url:$url, ldap_search_dn:$sdn, ldap_search_password:$spw, ldap_base_dn:$base,
    ldap_filter:"(objectClass=inetOrgPerson)", ldap_uid:"uid", ldap_scope:2, ldap_timeout:5,
    ldap_verify_cert:true, ldap_ca_cert:$ca, ldap_group_base_dn:$gbase,
    ldap_group_search_filter:"(objectClass=groupOfNames)", ldap_group_attribute_name:"cn",
    ldap_group_search_scope:2}')"
api_ok 200 GET /configurations
check "GET /configurations auth_mode" "$(jq -r '.auth_mode.value // .auth_mode' <<<"$API_BODY")" ldap_auth
check "GET /configurations ldap_url (LDAPS, certificate verified against the test CA)" \
  "$(jq -r '.ldap_url.value // .ldap_url' <<<"$API_BODY")" "$TEST_BERTH_LDAPS_URL"

# -------------------------------------------------- project and group member (before any directory login:
# a login records the user's directory groups as user groups, and POST /usergroups would then be a 409)
api_ok 201 POST /projects '{"project_name":"idp","metadata":{"public":"false"}}'
api_ok 201 POST /usergroups "$(jq -nc --arg dn "$DEV_DN" '{group_name:"developers",group_type:1,ldap_group_dn:$dn}')"
GID=${API_LOCATION##*/}
[[ $GID =~ ^[0-9]+$ ]] || die "POST /usergroups: no id in Location '$API_LOCATION'"
api_ok 201 POST /projects/idp/members "$(jq -nc --argjson g "$GID" '{role_id:2,member_group:{id:$g}}')"
# -------------------------------------------------- login with directory credentials, alice also a direct guest
SCOPE=repository:idp/app:pull,push
token alice "${LPW[alice]}" "$SCOPE"
check "token service, alice with her directory password: status" "$TOKEN_STATUS" 200
token eve "${LPW[eve]}" "$SCOPE"
check "token service, eve with her directory password: status" "$TOKEN_STATUS" 200
curl -sS -u "alice:${LPW[alice]}" "$API/users/current" -o "$WORKDIR/tmp/cur" 2>>"$LOG" || true
check "GET /users/current as alice (Basic, onboarded at first login)" "$(jq -r '.username // empty' "$WORKDIR/tmp/cur")" alice

api_ok 201 POST /projects/idp/members '{"role_id":3,"member_user":{"username":"alice"}}'
api_ok 200 GET /projects/idp/members
check "members of idp: the LDAP group as developer" \
  "$(jq -r '[.[] | select(.entity_type=="g") | "\(.entity_name)=\(.role_id)"] | join(",")' <<<"$API_BODY")" "developers=2"
say "    idp (private): group developers ($DEV_DN, id $GID) = developer; alice = guest (direct)"

token alice "${LPW[alice]}" "$SCOPE"
check "alice's token for $SCOPE (guest + group developer)" "$TOKEN_ACTIONS" "pull,push"
token eve "${LPW[eve]}" "$SCOPE"
check "eve's token for $SCOPE (in no group, no role)" "$TOKEN_ACTIONS" "none"

# -------------------------------------------------- real clients
start_dockerd
for t in ldap-docker ldap-skopeo ldap-eve ldap-after; do mkimg "$t" >/dev/null; done
docker_load ldap-docker
docker_load ldap-eve
docker_load ldap-after
if docker_login alice alice "${LPW[alice]}"; then ok "docker login alice (directory password)"
else bad "docker login alice (directory password) failed"; tail_out "$OUT"; fi
docker_push_pull alice alice idp/docker ldap-docker
want=$("${LC[@]}" ref "$IMGS" ldap-skopeo)
allowed "alice skopeo push idp/skopeo:v1" "${SKOPEO[@]}" copy --preserve-digests --dest-tls-verify=false \
  --dest-creds "alice:${LPW[alice]}" "oci:$IMGS:ldap-skopeo" "docker://$R/idp/skopeo:v1" \
  && check "idp/skopeo:v1 as admin sees it" "$(manifest_digest idp/skopeo v1)" "$want"
RUN_INPUT=${LPW[alice]}
allowed "podman login alice" "${PODMAN[@]}" login --tls-verify=false --authfile "$WORKDIR/podman-auth/alice.json" \
  -u alice --password-stdin "$R" || true
if allowed "alice podman pull idp/skopeo:v1" "${PODMAN[@]}" pull --tls-verify=false \
  --authfile "$WORKDIR/podman-auth/alice.json" "$R/idp/skopeo:v1"; then
  check "podman's image digest of idp/skopeo:v1" \
    "$("${PODMAN[@]}" image inspect --format '{{.Digest}}' "$R/idp/skopeo:v1" 2>&1)" "$want"
fi

# eve: logs in (a valid directory user), but is in no group and has no role in idp
if docker_login eve eve "${LPW[eve]}"; then ok "docker login eve (directory password)"
else bad "docker login eve failed"; tail_out "$OUT"; fi
dk eve tag e2e/ldap-eve:v1 "$R/idp/eve:v1"
denied "eve (not in the group) docker push idp/eve:v1" dk eve push "$R/idp/eve:v1"
check "idp/eve:v1 after eve's refused push" "$(manifest_digest idp/eve v1)" ""
denied "eve skopeo pull idp/skopeo:v1 (private, no role)" "${SKOPEO[@]}" copy --src-tls-verify=false \
  --src-creds "eve:${LPW[eve]}" "docker://$R/idp/skopeo:v1" "oci:$WORKDIR/tmp/eve-pull:v1"

# -------------------------------------------------- group membership removed in the directory
say "    ldapmodify: alice leaves $DEV_DN"
group_member delete
is_member "$ALICE_DN" && die "alice is still in $DEV_DN after ldapmodify"
sleep $((CACHE_S + 1))
token alice "${LPW[alice]}" "$SCOPE"
check "alice's next token for $SCOPE after auth.directory_cache (guest only)" "$TOKEN_ACTIONS" "pull"
dk alice tag e2e/ldap-after:v1 "$R/idp/after:v1"
denied "alice docker push idp/after:v1 (out of the group)" dk alice push "$R/idp/after:v1"
check "idp/after:v1 after the refused push" "$(manifest_digest idp/after v1)" ""
denied "alice skopeo push idp/skopeo2:v1 (out of the group)" "${SKOPEO[@]}" copy --preserve-digests \
  --dest-tls-verify=false --dest-creds "alice:${LPW[alice]}" "oci:$IMGS:ldap-skopeo" "docker://$R/idp/skopeo2:v1"
"${PODMAN[@]}" rmi -f "$R/idp/skopeo:v1" >/dev/null 2>&1 || true
if allowed "alice podman pull idp/skopeo:v1 (still guest)" "${PODMAN[@]}" pull --tls-verify=false \
  --authfile "$WORKDIR/podman-auth/alice.json" "$R/idp/skopeo:v1"; then
  check "podman's image digest of idp/skopeo:v1" \
    "$("${PODMAN[@]}" image inspect --format '{{.Digest}}' "$R/idp/skopeo:v1" 2>&1)" "$want"
fi
group_member add
sleep $((CACHE_S + 1))
token alice "${LPW[alice]}" "$SCOPE"
check "alice's token after she is back in the group" "$TOKEN_ACTIONS" "pull,push"

# -------------------------------------------------- wrong password, injection
token alice "Wrong-${LPW[alice]}" "$SCOPE"
check "token service, alice with a wrong password: status" "$TOKEN_STATUS" 401
RUN_INPUT="Wrong-${LPW[alice]}"
denied "docker login alice with a wrong password" dk wrong login -u alice --password-stdin "$R"
# Each would match alice's entry if the filter value were not escaped (RFC 4515).
for inj in 'alice*' '*)(uid=alice' 'al*ce' '*' 'alice)(|(uid=*' '*)(objectClass=*'; do
  token "$inj" "${LPW[alice]}" "$SCOPE"
  check "token service, username '$inj' with alice's password: status" "$TOKEN_STATUS" 401
done
RUN_INPUT=${LPW[alice]}
denied "docker login '*)(uid=alice' with alice's password" dk inj login -u '*)(uid=alice' --password-stdin "$R"
api GET "/users?page=1&page_size=100"
check "users onboarded from the directory (no injected name among them)" \
  "$(jq -r '[.[].username] | map(select(. != "admin")) | sort | join(",")' <<<"$API_BODY")" "alice,eve"

# -------------------------------------------------- lockout
token dave "${LPW[dave]}" "$SCOPE"
check "dave with her directory password before the lockout: status" "$TOKEN_STATUS" 200
for i in $(seq "$MAX_FAILED"); do
  token dave "Wrong-$i-${LPW[dave]}" "$SCOPE"
  check "dave wrong password #$i: status" "$TOKEN_STATUS" 401
done
token dave "${LPW[dave]}" "$SCOPE"
check "dave with her right password after $MAX_FAILED failures (locked): status" "$TOKEN_STATUS" 401
RUN_INPUT=${LPW[dave]}
denied "docker login dave (locked) with his right password" dk dave login -u dave --password-stdin "$R"
token alice "${LPW[alice]}" "$SCOPE"
check "alice is not locked by dave's failures: status" "$TOKEN_STATUS" 200

# -------------------------------------------------- the directory down
say "    stopping slapd"
"$ROOT/scripts/services.sh" stop "$WORKDIR/svc-ldap" >/dev/null 2>&1 || true
sleep $((CACHE_S + 1))
for _ in $(seq 50); do ldapsearch -x -H "$TEST_BERTH_LDAP_URL" -b "" -s base >/dev/null 2>&1 || break; sleep 0.1; done
token admin "$ADMIN_PASS" "$SCOPE"
check "local admin's token with the directory down: status" "$TOKEN_STATUS" 200
t1=$(date +%s)
token eve "${LPW[eve]}" "$SCOPE"
elapsed=$(($(date +%s) - t1))
case $TOKEN_STATUS in
  401 | 503) ok "eve's token with the directory down: $TOKEN_STATUS in ${elapsed}s: $TOKEN_BODY" ;;
  *) bad "eve's token with the directory down: got $TOKEN_STATUS ($TOKEN_BODY), expected 401 or 503" ;;
esac
[ "$elapsed" -le 7 ] && ok "the refusal came within ldap_timeout (5 s) + 2 s (${elapsed}s)" \
  || bad "the refusal took ${elapsed}s (ldap_timeout is 5 s)"
