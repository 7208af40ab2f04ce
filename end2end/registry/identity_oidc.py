#!/usr/bin/env python3
"""Browser-less OIDC login into berth, for identity.sh: the authorization-code flow a browser
makes, with `requests` and one cookie jar, through the test provider's HTML login form.

    identity_oidc.py login BERTH_URL USERNAME PASSWORD [--set-secret S] [--login-path P] [--bad-password]

1. GET BERTH_URL + P (default /c/oidc/login): berth redirects to the provider's authorization
   endpoint, which redirects to its login form (`<form method="post" action=...>` with
   `username` and `password`): the form must be on the provider's origin.
2. With --bad-password, first posts PASSWORD + "x": the provider must answer the form again
   with its error (and no redirect to berth); then goes on with the right one.
3. POSTs the form; follows the redirects back to berth's callback (code + state), which must end
   on berth's origin with a session cookie.
4. GET /api/v2.0/users/current with the session: the onboarded user and the CSRF token
   (X-Harbor-CSRF-Token). With --set-secret, PUT /api/v2.0/users/{id}/cli_secret
   {"secret": S} with that token, then GET /users/current again.

Prints one JSON object: {"user_id", "username", "secret" (oidc_user_meta.secret, last read),
"secret_before" (first read), "set_status", "redirects" (hosts visited, in order)}. Exit 1 with
a message on stderr when a step does not go as described.
"""

import argparse
import html
import json
import re
import sys
import urllib.parse

import requests


def die(msg):
    print(f"identity_oidc.py: {msg}", file=sys.stderr)
    sys.exit(1)


def origin(url):
    u = urllib.parse.urlsplit(url)
    return f"{u.scheme}://{u.netloc}"


def login_form(resp):
    m = re.search(r'<form[^>]*method="post"[^>]*action="([^"]+)"', resp.text, re.I)
    if not m or 'name="username"' not in resp.text or 'name="password"' not in resp.text:
        die(f"no login form at {resp.url} ({resp.status_code}): {resp.text[:300]!r}")
    return urllib.parse.urljoin(resp.url, html.unescape(m.group(1)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["login"])
    ap.add_argument("berth")
    ap.add_argument("username")
    ap.add_argument("password")
    ap.add_argument("--set-secret")
    ap.add_argument("--login-path", default="/c/oidc/login")
    ap.add_argument("--bad-password", action="store_true")
    a = ap.parse_args()
    berth = a.berth.rstrip("/")
    s = requests.Session()
    s.headers["User-Agent"] = "berth-identity-e2e"
    hosts = []

    def track(r):
        for h in r.history + [r]:
            o = origin(h.url)
            if not hosts or hosts[-1] != o:
                hosts.append(o)
        return r

    r = track(s.get(berth + a.login_path, timeout=30))
    if r.status_code != 200:
        die(f"GET {a.login_path} ended at {r.url} with {r.status_code}: {r.text[:300]!r}")
    if origin(r.url) == berth:
        die(f"GET {a.login_path} did not leave berth (ended at {r.url})")
    action = login_form(r)
    if origin(action) != origin(r.url):
        die(f"the login form posts to {action}, not to the provider {origin(r.url)}")

    if a.bad_password:
        bad = track(s.post(action, data={"username": a.username, "password": a.password + "x"}, timeout=30))
        if origin(bad.url) == berth or "Invalid" not in bad.text:
            die(f"a wrong password at the provider ended at {bad.url} ({bad.status_code}) without the form's error")
        action = login_form(bad)

    r = track(s.post(action, data={"username": a.username, "password": a.password}, timeout=30))
    if origin(r.url) != berth:
        die(f"after the login form the flow ended at {r.url} ({r.status_code}), not on berth: {r.text[:300]!r}")
    if r.status_code >= 400:
        die(f"berth's callback answered {r.status_code} at {r.url}: {r.text[:300]!r}")
    if not any(c.name == "sid" for c in s.cookies):
        die(f"no berth session cookie after the callback (cookies: {[c.name for c in s.cookies]})")

    cur = s.get(berth + "/api/v2.0/users/current", timeout=30)
    if cur.status_code != 200:
        die(f"GET /users/current with the session answered {cur.status_code}: {cur.text[:300]!r}")
    user = cur.json()
    csrf = cur.headers.get("X-Harbor-CSRF-Token", "")
    meta = user.get("oidc_user_meta") or {}
    out = {
        "user_id": user.get("user_id"),
        "username": user.get("username"),
        "secret_before": meta.get("secret", ""),
        "secret": meta.get("secret", ""),
        "set_status": None,
        "redirects": hosts,
    }
    if a.set_secret is not None:
        put = s.put(
            f"{berth}/api/v2.0/users/{user['user_id']}/cli_secret",
            json={"secret": a.set_secret},
            headers={"X-Harbor-CSRF-Token": csrf},
            timeout=30,
        )
        out["set_status"] = put.status_code
        again = s.get(berth + "/api/v2.0/users/current", timeout=30)
        out["secret"] = ((again.json() if again.ok else {}).get("oidc_user_meta") or {}).get("secret", "")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
