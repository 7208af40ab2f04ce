#!/usr/bin/env python3
"""A webhook receiver for end2end/registry/events.sh and deploy/test/ha.sh: records every POST
as one JSON line (path, headers, body) in OUT; answers 503 while the file FAIL exists, else 200,
after the number of seconds in the file DELAY (when given and present).
    webhook_receiver.py PORT OUT FAIL [DELAY]"""
import http.server
import json
import os
import sys
import time

port, out, fail = int(sys.argv[1]), sys.argv[2], sys.argv[3]
delay = sys.argv[4] if len(sys.argv) > 4 else None


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        with open(out, "a") as f:
            f.write(json.dumps({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                "body": json.loads(body or b"null")}) + "\n")
        if delay and os.path.exists(delay):
            time.sleep(float(open(delay).read().strip() or 0))
        self.send_response(503 if os.path.exists(fail) else 200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
