"""Parses docker-compose.yml with the real Compose implementation
(`docker-compose config`, which validates the file against the Compose
schema and needs no Docker engine) and prints its services as JSON:
{name: {"command": [...], "volumes": [...], "environment": {...}}}.

usage: compose_services.py ROOT
"""
import json
import shutil
import subprocess
import sys

import yaml

root = sys.argv[1]
exe = shutil.which("docker-compose")
assert exe, "docker-compose missing: run scripts/setup.sh --with-python"
out = subprocess.run(
    [exe, "-f", f"{root}/docker-compose.yml", "config"],
    capture_output=True, text=True, cwd=root,
)
assert out.returncode == 0, f"docker-compose config rejected the file:\n{out.stderr}"
config = yaml.safe_load(out.stdout)
services = {
    name: {
        "command": s.get("command", []),
        "volumes": s.get("volumes", []),
        "environment": s.get("environment", {}),
    }
    for name, s in config["services"].items()
}
print(json.dumps(services))
