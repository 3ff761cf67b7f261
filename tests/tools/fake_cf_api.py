#!/usr/bin/env python3
"""Test double for Cloudflare's Authenticated Origin Pulls API (origin_tls_client_auth), over
HTTPS on loopback. Python 3 standard library plus the openssl command line tool.

Shapes follow Cloudflare's public API reference (see docs/AOP.md): every answer is the
envelope {"success", "errors": [{"code", "message"}], "messages", "result"}; an uploaded
certificate is "pending_deployment" until --deploy-delay seconds have passed, then "active";
a deleted one is "pending_deletion" for --delete-delay seconds, then gone.

Files in DIR:
  ca.pem, server.pem, server.key   generated at start (its own test CA; clients trust ca.pem)
  port                             the bound port, written last (poll for it)
  requests.log                     one line per request: "METHOD PATH auth=ok|bad"
  state.json                       the certificates and settings after every change
  uploads/<id>.pem, <id>.key       what was uploaded (an nginx playing the edge can use them)
  control.json                     read on every request, to switch faults on at run time:
      {"rate_limit": N, "retry_after": S}  the next N requests get 429 with Retry-After: S
      {"fail": N}                          the next N requests get 500
      {"drop_upload": N}                   the next N uploads are stored but answered 502
      {"stall": N, "stall_match": RE, "stall_seconds": S}
                                           the next N requests whose "METHOD PATH" matches RE
                                           are carried out, then answered S seconds later (a
                                           test kills the client while the answer is held;
                                           "METHOD PATH" is appended to stalled.log first)
  Counters are decremented in the file as they are used.

The edge (--edge-dir DIR): what Cloudflare's edge would present to the origin. The newest
zone-level certificate that is "active" (or, with none, --edge-default's pair) is copied to
DIR/edge.pem and DIR/edge.key, "<id>" is appended to DIR/edge.log, and --edge-hook (a shell
command, e.g. one that sends SIGHUP to an nginx playing the edge) runs, each time it changes.

Zone level:   POST/GET /client/v4/zones/Z/origin_tls_client_auth, GET/DELETE …/ID,
              GET/PUT …/origin_tls_client_auth/settings
Per hostname: POST/GET …/origin_tls_client_auth/hostnames/certificates, GET/DELETE …/ID,
              PUT …/origin_tls_client_auth/hostnames {"config": [{hostname, cert_id, enabled}]}
"""
import argparse
import datetime
import http.server
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import time
import uuid

LOCK = threading.Lock()
PREFIX = "/client/v4/zones/"


def now():
    return time.time()


def iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(data)
    os.replace(tmp, path)


def make_tls(d):
    """A test CA and a server certificate for 127.0.0.1/localhost, made with the openssl CLI."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
        "-subj", "/CN=fake-cf-api test CA", "-keyout", os.path.join(d, "ca.key"), "-out", os.path.join(d, "ca.pem"),
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
        "-keyout", os.path.join(d, "server.key"), "-out", os.path.join(d, "server.csr"))
    ext = os.path.join(d, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", os.path.join(d, "server.csr"), "-CA", os.path.join(d, "ca.pem"),
        "-CAkey", os.path.join(d, "ca.key"), "-CAcreateserial", "-days", "2", "-extfile", ext,
        "-out", os.path.join(d, "server.pem"))


def cert_facts(pem):
    """(serial hex, not-after ISO, sha256 fingerprint hex) of a PEM certificate, or None."""
    p = subprocess.run(["openssl", "x509", "-noout", "-serial", "-enddate", "-fingerprint", "-sha256"],
                       input=pem.encode(), capture_output=True)
    if p.returncode != 0:
        return None
    out = p.stdout.decode()
    serial = re.search(r"serial=([0-9A-F]+)", out).group(1).lower().lstrip("0") or "0"
    end = re.search(r"notAfter=(.*)", out).group(1).strip()
    fp = re.search(r"Fingerprint=([0-9A-F:]+)", out).group(1).replace(":", "").lower()
    t = datetime.datetime.strptime(end, "%b %d %H:%M:%S %Y %Z").replace(tzinfo=datetime.timezone.utc)
    return serial, iso(t.timestamp()), fp


class State:
    def __init__(self, args):
        self.a = args
        self.certs = {"zone": {}, "hostname": {}}  # kind -> id -> record
        self.enabled = False
        self.hostnames = {}  # hostname -> {cert_id, enabled}

    def status(self, c):
        t = now()
        if c.get("deleted_at") is not None:
            return None if t - c["deleted_at"] >= self.a.delete_delay else "pending_deletion"
        return "active" if t - c["uploaded_at"] >= self.a.deploy_delay else "pending_deployment"

    def view(self, kind, c):
        v = {"id": c["id"], "status": self.status(c), "certificate": c["certificate"],
             "expires_on": c["expires_on"], "issuer": "originguard", "signature": "ECDSAWithSHA256",
             "uploaded_on": iso(c["uploaded_at"])}
        if kind == "hostname":
            v["serial_number"] = c["serial"]
        return v

    def live(self, kind):
        return [c for c in self.certs[kind].values() if self.status(c) is not None]

    def dump(self):
        out = {"enabled": self.enabled, "hostnames": self.hostnames, "zone": [], "hostname": []}
        for kind in ("zone", "hostname"):
            for c in self.certs[kind].values():
                out[kind].append({"id": c["id"], "status": self.status(c) or "deleted",
                                  "fingerprint_sha256": c["fp"], "serial": c["serial"]})
        write_atomic(os.path.join(self.a.dir, "state.json"), json.dumps(out, indent=1))


def envelope(result=None, errors=(), success=True, extra=None):
    body = {"success": success, "errors": list(errors), "messages": [], "result": result}
    if extra:
        body.update(extra)
    return json.dumps(body).encode()


def error(code, message):
    return envelope(None, [{"code": code, "message": message}], success=False)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-cf-api/1"

    def log_message(self, fmt, *args):
        pass

    def send(self, status, body, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def control(self, key, match=None):
        """Consumes one unit of control.json[key]; returns the control dict if one was left.
        With `match`, only when control.json's "<key>_match" regex matches it."""
        path = os.path.join(self.server.state.a.dir, "control.json")
        try:
            with open(path) as f:
                c = json.load(f)
        except (FileNotFoundError, ValueError):
            return None
        if int(c.get(key, 0)) <= 0:
            return None
        if match is not None and not re.search(c.get(key + "_match", ""), match):
            return None
        c[key] = int(c[key]) - 1
        write_atomic(path, json.dumps(c))
        return c

    def handle_any(self, method):
        st = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        auth = self.headers.get("Authorization", "")
        good = auth == "Bearer " + st.a.token
        with open(os.path.join(st.a.dir, "requests.log"), "a") as f:
            f.write(f"{method} {self.path} auth={'ok' if good else 'bad'}\n")
        with LOCK:
            c = self.control("rate_limit")
            if c is not None:
                ra = str(c.get("retry_after", 1))
                return self.send(429, error(971, "Please wait and consider throttling your request speed"),
                                 {"Retry-After": ra})
            if self.control("fail") is not None:
                return self.send(500, error(10002, "An unknown error has occurred"))
            if not good:
                return self.send(403, error(10000, "Authentication error"))
            m = re.fullmatch(r"/client/v4/zones/([0-9a-f]{32})/origin_tls_client_auth(/.*)?", self.path)
            if not m or m.group(1) != st.a.zone:
                return self.send(404, error(7003, "Could not route to " + self.path +
                                            ", perhaps your object identifier is invalid?"))
            rest = m.group(2) or ""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                return self.send(400, error(6007, "Malformed JSON in request body"))
            status, resp, hdrs = self.route(method, rest, body)
            st.dump()
            stall = self.control("stall", f"{method} {self.path}")
        if stall is not None:
            with open(os.path.join(st.a.dir, "stalled.log"), "a") as f:
                f.write(f"{method} {self.path}\n")
            time.sleep(float(stall.get("stall_seconds", 10)))
            try:
                return self.send(status, resp, hdrs)
            except OSError:  # the client is gone (killed while the answer was held)
                self.close_connection = True
                return None
        return self.send(status, resp, hdrs)

    def route(self, method, rest, body):
        st = self.server.state
        if rest == "/settings":
            if method == "PUT":
                if not isinstance(body, dict) or not isinstance(body.get("enabled"), bool):
                    return 400, error(1002, "enabled must be a boolean"), None
                st.enabled = body["enabled"]
            if method in ("GET", "PUT"):
                return 200, envelope({"enabled": st.enabled}), None
        if rest == "/hostnames" and method == "PUT":
            if not isinstance(body, dict) or not isinstance(body.get("config"), list):
                return 400, error(1002, "config must be a list"), None
            out = []
            for e in body["config"]:
                cid = e.get("cert_id")
                if cid not in st.certs["hostname"] or st.status(st.certs["hostname"][cid]) != "active":
                    return 400, error(1420, "certificate " + str(cid) + " is not active"), None
                st.hostnames[e.get("hostname")] = {"cert_id": cid, "enabled": e.get("enabled")}
                out.append({"hostname": e.get("hostname"), "cert_id": cid, "enabled": e.get("enabled"),
                            "status": "active", "cert_status": "active"})
            return 200, envelope(out), None
        kind = "zone"
        if rest.startswith("/hostnames/certificates"):
            kind, rest = "hostname", rest[len("/hostnames/certificates"):]
        certs = st.certs[kind]
        if rest == "" and method == "GET":
            live = [st.view(kind, c) for c in st.live(kind)]
            return 200, envelope(live, extra={"result_info": {"page": 1, "per_page": 50, "count": len(live),
                                                               "total_count": len(live)}}), None
        if rest == "" and method == "POST":
            if (not isinstance(body, dict) or not isinstance(body.get("certificate"), str)
                    or not isinstance(body.get("private_key"), str) or "PRIVATE KEY" not in body["private_key"]):
                return 400, error(1400, "certificate and private_key are required"), None
            facts = cert_facts(body["certificate"])
            if facts is None:
                return 400, error(1406, "The certificate could not be parsed"), None
            cid = uuid.uuid4().hex
            certs[cid] = {"id": cid, "certificate": body["certificate"], "serial": facts[0],
                          "expires_on": facts[1], "fp": facts[2], "uploaded_at": now(), "deleted_at": None}
            up = os.path.join(st.a.dir, "uploads")
            os.makedirs(up, exist_ok=True)
            write_atomic(os.path.join(up, cid + ".pem"), body["certificate"])
            write_atomic(os.path.join(up, cid + ".key"), body["private_key"])
            if self.control("drop_upload") is not None:
                return 502, b"<html>502 Bad Gateway</html>", None
            return 200, envelope(st.view(kind, certs[cid])), None
        m = re.fullmatch(r"/([0-9a-f]{32})", rest)
        if m and m.group(1) in certs and st.status(certs[m.group(1)]) is not None:
            c = certs[m.group(1)]
            if method == "GET":
                return 200, envelope(st.view(kind, c)), None
            if method == "DELETE":
                if c["deleted_at"] is None:
                    c["deleted_at"] = now()
                return 200, envelope({"id": c["id"], "status": st.status(c)}), None
        if m:
            return 404, error(1401, "Certificate not found"), None
        return 405, error(10405, "Method not allowed for this path"), None

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")


def edge_loop(st):
    """Plays the edge: presents the newest active zone certificate (see the module doc)."""
    a, shown = st.a, None
    while True:
        with LOCK:
            live = [c for c in st.certs["zone"].values() if st.status(c) == "active"]
            cur = max(live, key=lambda c: c["uploaded_at"])["id"] if live else "default"
        if cur != shown:
            if cur == "default":
                src = a.edge_default.split(",") if a.edge_default else None
            else:
                src = [os.path.join(a.dir, "uploads", cur + ext) for ext in (".pem", ".key")]
            if src:
                for name, path in zip(("edge.pem", "edge.key"), src):
                    with open(path) as f:
                        write_atomic(os.path.join(a.edge_dir, name), f.read())
                with open(os.path.join(a.edge_dir, "edge.log"), "a") as f:
                    f.write(cur + "\n")
                if a.edge_hook:
                    subprocess.run(a.edge_hook, shell=True)
            shown = cur
        time.sleep(0.05)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--zone", required=True, help="the one zone id (32 hex digits) it serves")
    ap.add_argument("--token", required=True, help="the one accepted API token")
    ap.add_argument("--deploy-delay", type=float, default=0.0, help="seconds in pending_deployment")
    ap.add_argument("--delete-delay", type=float, default=0.0, help="seconds in pending_deletion")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--max-seconds", type=int, default=600, help="exit on its own after this long")
    ap.add_argument("--edge-dir", help="play the edge: the certificate it presents goes here")
    ap.add_argument("--edge-default", help="CERT,KEY the edge presents while no zone certificate is active")
    ap.add_argument("--edge-hook", help="shell command run after the edge's certificate changed")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    make_tls(a.dir)
    st = State(a)
    st.dump()
    srv = Server((a.bind, 0), Handler)
    srv.state = st
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(a.dir, "server.pem"), os.path.join(a.dir, "server.key"))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    if a.edge_dir:
        threading.Thread(target=edge_loop, args=(st,), daemon=True).start()
    write_atomic(os.path.join(a.dir, "port"), str(srv.server_address[1]))
    threading.Timer(a.max_seconds, lambda: os._exit(0)).start()
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
