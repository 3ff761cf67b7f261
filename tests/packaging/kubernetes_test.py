#!/usr/bin/python3
"""Offline (unit tier) checks of packaging/kubernetes/. Debian 12 ships no kubeconform and no
OpenAPI schema bundle; it ships the Kubernetes Python client (python3-kubernetes, API 1.22),
whose model classes are generated from Kubernetes' OpenAPI spec. So:
1. schema: every object is decoded into its model class, field by field: an unknown field,
   a wrong type or a missing required field fails (the models refuse None for required ones);
2. the kustomization names every manifest, and only existing ones; names are unique per kind;
3. what the agent needs and nothing more: hostNetwork, capabilities NET_ADMIN, BPF, SYS_ADMIN
   over drop ALL, not privileged, bpffs, state and run directories mounted from the host,
   liveness and readiness by agentctl status, requests and limits, tolerations for all nodes;
   the gatekeeper unprivileged, with its TLS material from a Secret; selectors match labels;
4. the configs in the ConfigMaps pass the daemons' own --check-config.
Run: AGENT=build/originguard-agent GATEKEEPER=build/gatekeeper/originguard-gatekeeper \
     tests/packaging/kubernetes_test.py [ROOT]"""
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import yaml
from kubernetes import client

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[2])
K8S = ROOT / "packaging" / "kubernetes"
failures = []
checks = 0


def check(ok, what):
    global checks
    checks += 1
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)


PRIMITIVES = {"str": str, "int": int, "bool": bool, "float": (int, float), "object": object}


def model_class(type_name):
    return getattr(client, type_name, None)


def validate(value, type_name, path, errors):
    """Walks `value` against the client's generated model `type_name`, strictly."""
    if value is None:
        return
    m = re.fullmatch(r"list\[(.+)\]", type_name)
    if m:
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list")
            return
        for i, v in enumerate(value):
            validate(v, m.group(1), f"{path}[{i}]", errors)
        return
    m = re.fullmatch(r"dict\(str, (.+)\)", type_name)
    if m:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a map")
            return
        for k, v in value.items():
            validate(v, m.group(1), f"{path}.{k}", errors)
        return
    if type_name in PRIMITIVES:
        if type_name == "str" and isinstance(value, (int, float)) and not isinstance(value, bool):
            errors.append(f"{path}: expected a string, got {value!r}")
        elif type_name != "str" and not isinstance(value, PRIMITIVES[type_name]):
            errors.append(f"{path}: expected {type_name}, got {value!r}")
        return
    cls = model_class(type_name)
    if cls is None:
        errors.append(f"{path}: unknown model {type_name}")
        return
    if not isinstance(value, dict):
        errors.append(f"{path}: expected an object ({type_name})")
        return
    by_json = {j: a for a, j in cls.attribute_map.items()}
    for k, v in value.items():
        if k not in by_json:
            errors.append(f"{path}.{k}: unknown field of {type_name}")
            continue
        validate(v, cls.openapi_types[by_json[k]], f"{path}.{k}", errors)


KINDS = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Service"): "V1Service",
    ("v1", "Secret"): "V1Secret",
    ("apps/v1", "DaemonSet"): "V1DaemonSet",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("networking.k8s.io/v1", "NetworkPolicy"): "V1NetworkPolicy",
}

api = client.ApiClient()
kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
listed = kustomization.get("resources", [])
present = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
check(sorted(listed) == present, f"kustomization resources = the manifests in the directory ({present})")
check(kustomization.get("apiVersion") == "kustomize.config.k8s.io/v1beta1" and kustomization.get("kind") == "Kustomization",
      "kustomization.yaml is a Kustomization")
check(any(i.get("name") == "originguard" for i in kustomization.get("images", [])),
      "kustomization sets the originguard image")

objects = []
for name in present:
    for doc in yaml.safe_load_all((K8S / name).read_text()):
        if doc is not None:
            objects.append((name, doc))
seen = set()
for name, doc in objects:
    key = (doc.get("apiVersion"), doc.get("kind"))
    model = KINDS.get(key)
    what = f"{name}: {key[1]} {doc.get('metadata', {}).get('name')}"
    check(model is not None, f"{what}: known apiVersion/kind {key}")
    if model is None:
        continue
    errors = []
    validate(doc, model, key[1], errors)
    check(not errors, f"{what}: every field is in the {model} schema" + "".join("\n    " + e for e in errors))
    try:
        api._ApiClient__deserialize(doc, model)  # the models refuse a missing required field
        check(True, f"{what}: required fields present")
    except (ValueError, TypeError) as e:
        check(False, f"{what}: required fields present: {e}")
    meta = doc.get("metadata", {})
    check(bool(meta.get("name")), f"{what}: has a name")
    if key[1] != "Namespace":
        check(meta.get("namespace") == kustomization.get("namespace"), f"{what}: in namespace {kustomization.get('namespace')}")
    check((key[1], meta.get("name")) not in seen, f"{what}: unique name for its kind")
    seen.add((key[1], meta.get("name")))

by_kind = {}
for _, doc in objects:
    by_kind.setdefault(doc["kind"], []).append(doc)


def containers(workload):
    return workload["spec"]["template"]["spec"]["containers"]


for w in by_kind.get("DaemonSet", []) + by_kind.get("Deployment", []):
    n = f"{w['kind']} {w['metadata']['name']}"
    sel = w["spec"]["selector"]["matchLabels"]
    labels = w["spec"]["template"]["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in sel.items()), f"{n}: selector matches the pod labels")
    for c in containers(w):
        r = c.get("resources", {})
        check(bool(r.get("requests")) and bool(r.get("limits")), f"{n}/{c['name']}: resource requests and limits")
        check(c.get("image", "").startswith("originguard:"), f"{n}/{c['name']}: runs the originguard image")
        sc = c.get("securityContext", {})
        check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{n}/{c['name']}: drops all capabilities")
        check(not sc.get("privileged", False), f"{n}/{c['name']}: not privileged")
        check(sc.get("allowPrivilegeEscalation") is False, f"{n}/{c['name']}: no privilege escalation")
        check(sc.get("readOnlyRootFilesystem") is True, f"{n}/{c['name']}: read-only root filesystem")
        check(bool(c.get("livenessProbe")) and bool(c.get("readinessProbe")), f"{n}/{c['name']}: liveness and readiness probes")

agents = [d for d in by_kind.get("DaemonSet", []) if d["metadata"]["name"] == "originguard-agent"]
check(len(agents) == 1, "one agent DaemonSet")
if agents:
    spec = agents[0]["spec"]["template"]["spec"]
    c = spec["containers"][0]
    check(spec.get("hostNetwork") is True, "agent: hostNetwork (it programs the node's firewall)")
    check(sorted(c["securityContext"]["capabilities"].get("add", [])) == ["BPF", "NET_ADMIN", "SYS_ADMIN"],
          "agent: adds exactly NET_ADMIN, BPF, SYS_ADMIN")
    check({"operator": "Exists"} in spec.get("tolerations", []), "agent: tolerates every taint (all nodes)")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
    host_paths = {v["name"]: v.get("hostPath", {}).get("path") for v in spec.get("volumes", [])}
    for path in ("/sys/fs/bpf", "/var/lib/originguard", "/run/originguard"):
        check(host_paths.get(mounts.get(path)) == path, f"agent: host {path} mounted at {path}")
    probes = " ".join(" ".join(c[p]["exec"]["command"]) for p in ("livenessProbe", "readinessProbe"))
    check(probes.count("agentctl status") == 2, "agent: both probes run agentctl status")
    check("test $? -ne 2" in " ".join(c["livenessProbe"]["exec"]["command"]),
          "agent: liveness fails only when the agent is unreachable (exit 2)")
    check(c["command"][:2] == ["/usr/sbin/originguard-agent", "--foreground"], "agent: runs in the foreground")

gks = by_kind.get("Deployment", [])
check(len(gks) == 1, "one gatekeeper Deployment")
if gks:
    spec = gks[0]["spec"]["template"]["spec"]
    c = spec["containers"][0]
    check(spec.get("securityContext", {}).get("runAsNonRoot") is True, "gatekeeper: runs as non-root")
    check(not c["securityContext"]["capabilities"].get("add"), "gatekeeper: no capability added")
    secrets = [v for v in spec["volumes"] if "secret" in v]
    tls_mount = [m for m in c["volumeMounts"] if m["mountPath"] == "/etc/originguard/tls"]
    check(len(secrets) == 1 and tls_mount and tls_mount[0]["name"] == secrets[0]["name"],
          "gatekeeper: certificates from a Secret at /etc/originguard/tls")

# The configs in the ConfigMaps, checked by the daemons themselves.
configs = {d["metadata"]["name"]: d["data"] for d in by_kind.get("ConfigMap", [])}
agent_bin = os.environ.get("AGENT")
gk_bin = os.environ.get("GATEKEEPER")
with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    if agent_bin:
        f = tmp / "agent.toml"
        f.write_text(configs["originguard-agent-config"]["agent.toml"])
        p = subprocess.run([agent_bin, "--check-config", "--config", str(f)], capture_output=True, text=True)
        check(p.returncode == 0, "agent ConfigMap passes originguard-agent --check-config" + ("" if p.returncode == 0 else ": " + p.stderr))
    if gk_bin:
        # The Secret's files, made here: a CA, the origin certificate it signs, and the CA again
        # as the client CA.
        tls = tmp / "tls"
        tls.mkdir()
        def openssl(*args):
            subprocess.run(["openssl", *args], check=True, capture_output=True)
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
                "-subj", "/CN=test CA", "-keyout", str(tls / "ca.key"), "-out", str(tls / "client-ca.pem"))
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=www.example.com",
                "-keyout", str(tls / "tls.key"), "-out", str(tls / "req.csr"))
        openssl("x509", "-req", "-in", str(tls / "req.csr"), "-CA", str(tls / "client-ca.pem"), "-CAkey", str(tls / "ca.key"),
                "-CAcreateserial", "-days", "30", "-out", str(tls / "tls.crt"))
        text = configs["originguard-gatekeeper-config"]["gatekeeper.toml"].replace("/etc/originguard/tls/", f"{tls}/")
        f = tmp / "gatekeeper.toml"
        f.write_text(text)
        p = subprocess.run([gk_bin, "--check-config", "--config", str(f)], capture_output=True, text=True)
        check(p.returncode == 0, "gatekeeper ConfigMap passes originguard-gatekeeper --check-config" + ("" if p.returncode == 0 else ": " + p.stderr + p.stdout))
    check(bool(agent_bin) and bool(gk_bin), "AGENT and GATEKEEPER name the built daemons (configs checked)")

print(f"{checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
