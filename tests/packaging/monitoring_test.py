#!/usr/bin/python3
"""Offline (unit tier) checks of packaging/monitoring/:
- promtool check rules, and promtool test rules (originguard.rules.test.yml);
- every alert has a test where it fires and an evaluation where it stays quiet;
- the Grafana dashboard is valid JSON, each panel has an id, a place and a query, and every
  query parses as PromQL (promtool check rules on the queries turned into recording rules);
- every metric the rules and the dashboard use is exported by the agent or the gatekeeper
  (its name is in their sources), or is listed in NOT_EXPORTED_YET, which must then be true.
Run: tests/packaging/monitoring_test.py [ROOT]"""
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import yaml

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[2])
MON = ROOT / "packaging" / "monitoring"
PROMTOOL = os.environ.get("PROMTOOL", "promtool")

# Metrics the rules and the dashboard use that neither daemon exports yet: none since the
# agent's [metrics] endpoint and its enforcer, reload and source families (issue 14,
# deliverable 1). A name added here must not be exported (the check below says when to drop it).
NOT_EXPORTED_YET: set[str] = set()

failures = []
checks = 0


def check(ok, what):
    global checks
    checks += 1
    print(("ok: " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)


def run(*cmd, cwd=None):
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    return p.returncode, p.stdout + p.stderr


rules_file = MON / "originguard.rules.yml"
tests_file = MON / "originguard.rules.test.yml"
rc, out = run(PROMTOOL, "check", "rules", str(rules_file))
check(rc == 0, "promtool check rules originguard.rules.yml" + ("" if rc == 0 else "\n" + out))
rc, out = run(PROMTOOL, "test", "rules", tests_file.name, cwd=MON)
check(rc == 0, "promtool test rules originguard.rules.test.yml" + ("" if rc == 0 else "\n" + out))

rules = yaml.safe_load(rules_file.read_text())
alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
tests = yaml.safe_load(tests_file.read_text())
fires, quiet = set(), set()
for t in tests["tests"]:
    for a in t.get("alert_rule_test", []):
        (fires if a.get("exp_alerts") else quiet).add(a["alertname"])
for name in sorted(alerts):
    check(name in fires, f"alert {name} has a test where it fires")
    check(name in quiet, f"alert {name} has an evaluation where it stays quiet")
check(not (fires | quiet) - set(alerts), "tests name only alerts that exist")
required = {"OriginguardRangesStale", "OriginguardRefreshFailing", "OriginguardDriftRepaired",
            "OriginguardEnforcerApplyFailing", "OriginguardGatekeeperRefusalsSpiking",
            "OriginguardCertificateExpiring", "OriginguardGatekeeperDown"}
check(required <= set(alerts), "the alerts issue 14 lists exist: " + ", ".join(sorted(required - set(alerts))))
for name, r in alerts.items():
    check(r.get("labels", {}).get("severity") in ("warning", "critical"), f"alert {name} has a severity")
    check(bool(r.get("annotations", {}).get("summary")), f"alert {name} has a summary")

dash = json.loads((MON / "originguard-dashboard.json").read_text())
panels = [p for p in dash["panels"] if p["type"] != "row"]
ids = [p["id"] for p in dash["panels"]]
check(len(ids) == len(set(ids)), "dashboard panel ids are unique")
check(len(panels) >= 10, f"dashboard has panels ({len(panels)})")
exprs = []
for p in panels:
    check(bool(p.get("targets")) and all(t.get("expr") for t in p["targets"]), f"panel '{p['title']}' has queries")
    g = p.get("gridPos", {})
    check(all(k in g for k in "hwxy") and g["x"] + g["w"] <= 24, f"panel '{p['title']}' has a place on the grid")
    check(p.get("datasource", {}).get("uid") == "${datasource}", f"panel '{p['title']}' uses the datasource variable")
    exprs += [t["expr"] for t in p["targets"]]
variables = {v["name"] for v in dash["templating"]["list"]}
check({"datasource", "instance"} <= variables, "dashboard has the datasource and instance variables")

# Grafana's variables replaced by what they expand to, then each query parsed by promtool.
def concrete(e):
    return e.replace("$__rate_interval", "5m").replace("$instance", ".*")

with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": concrete(e)} for i, e in enumerate(exprs)]}]}, f)
rc, out = run(PROMTOOL, "check", "rules", f.name)
os.unlink(f.name)
check(rc == 0, f"every dashboard query parses as PromQL ({len(exprs)} queries)" + ("" if rc == 0 else "\n" + out))

used = set()
for e in exprs + [r["expr"] for r in alerts.values()]:
    used |= set(re.findall(r"\b(?:originguard|og_gk)_[a-z0-9_]+\b", e))
sources = ""
for d in ("agent", "gatekeeper", "common"):
    for f in (ROOT / d).rglob("*.[ch]pp"):
        sources += f.read_text(errors="replace")
for m in sorted(used):
    exported = m in sources
    if m in NOT_EXPORTED_YET:
        check(not exported, f"{m} is listed as not exported yet, and is not (remove it from NOT_EXPORTED_YET once it is)")
    else:
        check(exported, f"{m} (used by rules/dashboard) is exported by the agent or the gatekeeper")

print(f"{checks - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
