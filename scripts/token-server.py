#!/usr/bin/env python3
"""A Docker Registry v2 token service for tests, as CNCF distribution 2.8 verifies it.

  token-server.py keygen DIR      writes DIR/token.key (EC P-256) and DIR/token.crt (self-signed;
                                  distribution's auth.token.rootcertbundle)
  token-server.py serve DIR PORT USER PASSWORD SERVICE ISSUER
                                  serves GET /token on 127.0.0.1:PORT

GET /token?service=S&scope=repository:a/b:pull,push&scope=... with Basic USER:PASSWORD answers
{"token", "access_token", "expires_in": 300, "issued_at"}: an ES256 JWT whose `access` grants
every action asked for. Without credentials the token grants nothing (as Docker Hub's anonymous
tokens do); wrong credentials get 401. The JWT header's `kid` is the libtrust key ID of the
certificate's key (what distribution 2.8 looks up). GET /stats answers {"issued": N} (tokens
issued so far), so tests can check that clients cache their tokens.
"""
import base64
import datetime
import hashlib
import hmac
import json
import os
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

EXPIRES_IN = 300


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_kid(public_key) -> str:
    """libtrust's KeyID: base32 of the first 240 bits of SHA-256(DER SubjectPublicKeyInfo), in
    12 groups of 4 separated by ':'."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    s = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(s[i:i + 4] for i in range(0, len(s), 4))


def keygen(d: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "berth-test-token-issuer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    with open(os.path.join(d, "token.key"), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(os.path.join(d, "token.crt"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def parse_scope(scope: str):
    """`type:name:actions` (the name may hold ':' for a registry host with a port)."""
    parts = scope.split(":")
    if len(parts) < 3:
        return None
    return {"type": parts[0], "name": ":".join(parts[1:-1]), "actions": [a for a in parts[-1].split(",") if a]}


def serve(d: str, port: int, user: str, password: str, service: str, issuer: str) -> None:
    with open(os.path.join(d, "token.key"), "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    kid = libtrust_kid(key.public_key())
    counter = {"issued": 0}
    lock = threading.Lock()

    def sign(claims: dict) -> str:
        header = {"typ": "JWT", "alg": "ES256", "kid": kid}
        signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, status: int, body: dict, headers=()):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/stats":
                with lock:
                    return self.answer(200, dict(counter))
            if url.path != "/token":
                return self.answer(404, {"errors": [{"code": "NOT_FOUND", "message": "no such path"}]})
            q = urllib.parse.parse_qs(url.query)
            subject = ""
            auth = self.headers.get("Authorization", "")
            if auth:
                ok = False
                if auth.lower().startswith("basic "):
                    try:
                        u, _, p = base64.b64decode(auth[6:].strip()).decode().partition(":")
                        ok = hmac.compare_digest(u, user) and hmac.compare_digest(p, password)
                    except Exception:
                        ok = False
                if not ok:
                    return self.answer(401, {"errors": [{"code": "UNAUTHORIZED",
                                                         "message": "invalid user name or password"}]},
                                       [("WWW-Authenticate", 'Basic realm="berth-test-token"')])
                subject = user
            if q.get("service", [service])[0] != service:
                return self.answer(400, {"errors": [{"code": "DENIED", "message": "unknown service"}]})
            access = []
            if subject:
                for sc in q.get("scope", []):
                    for one in sc.split(" "):
                        parsed = parse_scope(one)
                        if parsed:
                            access.append(parsed)
            now = int(datetime.datetime.now(datetime.timezone.utc).timestamp())
            claims = {"iss": issuer, "sub": subject, "aud": service, "exp": now + EXPIRES_IN,
                      "nbf": now - 10, "iat": now, "jti": b64url(os.urandom(12)), "access": access}
            token = sign(claims)
            with lock:
                counter["issued"] += 1
            self.answer(200, {"token": token, "access_token": token, "expires_in": EXPIRES_IN,
                              "issued_at": datetime.datetime.now(datetime.timezone.utc).isoformat()})

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "keygen":
        keygen(sys.argv[2])
    elif len(sys.argv) == 8 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), *sys.argv[4:8])
    else:
        sys.exit(__doc__)
