"""One anonymous client sending failed token-service logins with fresh names (half of them
`robot$…`, which skip argon2): prints how many requests were answered with which status.
    python3 bench/hostile_fill.py HOST PORT N NAME_LENGTH"""
import base64
import http.client
import random
import string
import sys
import time

host, port, n, namelen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
c = http.client.HTTPConnection(host, port)
codes = {}
t0 = time.time()
for i in range(n):
    name = "".join(random.choices(string.ascii_lowercase, k=namelen))
    if i % 2:
        name = "robot$" + name[:-6]
    auth = base64.b64encode(f"{name}:wrong-password".encode()).decode()
    c.request("GET", "/service/token?service=x&scope=repository:library/a:pull",
              headers={"Authorization": "Basic " + auth})
    r = c.getresponse()
    r.read()
    codes[r.status] = codes.get(r.status, 0) + 1
print(f"{n} requests with {namelen}-character names in {time.time() - t0:.1f} s: statuses {codes}")
