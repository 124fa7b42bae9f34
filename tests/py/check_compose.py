"""Checks docker-compose.yml's shape: services, the cluster layout matching
deploy/hosts, and that every cryptoflow process reads the same topic."""
import sys

import yaml

root = sys.argv[1]
with open(f"{root}/docker-compose.yml") as f:
    compose = yaml.safe_load(f)
services = compose["services"]
for name in ["kafka", "topics", "cryptoflow-0", "cryptoflow-1", "feed"]:
    assert name in services, f"missing service {name}"
hosts = [l.strip() for l in open(f"{root}/deploy/hosts") if l.strip() and not l.startswith("#")]
runs = [s["command"] for n, s in services.items() if n.startswith("cryptoflow-")]
for cmd in runs:
    assert cmd[0] == "run", cmd
    args = dict(zip(cmd[1::2], cmd[2::2])) if "--no-http" not in cmd else None
    n = int(cmd[cmd.index("-n") + 1])
    p = int(cmd[cmd.index("-p") + 1])
    assert n == len(hosts) == len(runs), (n, hosts)
    assert hosts[p].startswith(f"cryptoflow-{p}:"), (p, hosts)
    assert cmd[cmd.index("--topic") + 1] == "ticks"
print("ok")
