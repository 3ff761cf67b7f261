#!/usr/bin/env python3
"""Visitor traffic for tests/e2e/aop_rotation.sh: requests through the nginx playing the
Cloudflare edge (plain HTTP to it; it proxies to the gatekeeper with the zone's client
certificate, one full TLS handshake per request), one at a time, until STOP_FILE exists or
the bounds (MAX_REQUESTS, MAX_SECONDS) are reached.

usage: aop_client_loop.py PORT HOST OUT_JSON STOP_FILE MAX_REQUESTS MAX_SECONDS [GAP_SECONDS]

A request succeeds when the answer is 200 and the upstream saw a verified client certificate
(the echo's X-Client-Verify is SUCCESS). OUT_JSON gets, on exit:
  {"sent", "ok", "failed", "failures": [first 20 "time what"], "certs": {sha256: count}}
where "certs" counts the client certificates (X-Client-Cert-SHA256 from the gatekeeper)
that the edge presented on successful requests; it is rewritten every 50 requests too, so a
test can watch progress.
"""
import http.client
import json
import os
import sys
import time


def main():
    port, host, out, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    max_req, max_s = int(sys.argv[5]), float(sys.argv[6])
    gap = float(sys.argv[7]) if len(sys.argv) > 7 else 0.02
    res = {"sent": 0, "ok": 0, "failed": 0, "failures": [], "certs": {}}

    def dump():
        tmp = out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(res, f)
        os.replace(tmp, out)

    t0 = time.monotonic()
    while res["sent"] < max_req and time.monotonic() - t0 < max_s and not os.path.exists(stop):
        res["sent"] += 1
        what = None
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", f"/r{res['sent']}", headers={"Host": host, "Connection": "close"})
            r = c.getresponse()
            body = r.read()
            c.close()
            if r.status != 200:
                what = f"HTTP {r.status}: {body[:120]!r}"
            else:
                h = {k.lower(): v for k, v in json.loads(body)["headers"].items()}
                if h.get("x-client-verify") != "SUCCESS":
                    what = f"upstream saw X-Client-Verify {h.get('x-client-verify')!r}"
                else:
                    sha = h.get("x-client-cert-sha256", "?")
                    res["certs"][sha] = res["certs"].get(sha, 0) + 1
        except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
            what = f"{type(e).__name__}: {e}"
        if what is None:
            res["ok"] += 1
        else:
            res["failed"] += 1
            if len(res["failures"]) < 20:
                res["failures"].append(f"{time.strftime('%H:%M:%S')} #{res['sent']} {what}")
        if res["sent"] % 50 == 0:
            dump()
        time.sleep(gap)
    dump()


if __name__ == "__main__":
    main()
