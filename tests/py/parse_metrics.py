"""Parses an OpenMetrics text exposition (a file or stdin) with the official
Prometheus client's parser and prints one JSON object: sample name ->
{labels as sorted "k=v,..." -> value}. Fails on anything the parser rejects."""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
out = {}
for family in text_string_to_metric_families(text):
    for s in family.samples:
        key = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        out.setdefault(s.name, {})[key] = s.value
print(json.dumps(out, sort_keys=True))
