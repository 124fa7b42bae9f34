"""Reads every record of a topic with kafka-python (an independent client;
lz4 batches need the `lz4` package) and prints one JSON object per record:
{"partition", "offset", "key", "value"} (key and value as UTF-8 text).

Usage: read_topic.py BOOTSTRAP TOPIC EXPECTED
Reads until EXPECTED records have arrived, then one more second to catch
extras (so an over-production shows), or until 30 s pass."""
import json
import sys
import time

from kafka import KafkaConsumer, TopicPartition

bootstrap, topic, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
consumer = KafkaConsumer(
    bootstrap_servers=bootstrap,
    enable_auto_commit=False,
    auto_offset_reset="earliest",
)
partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
consumer.assign(partitions)
consumer.seek_to_beginning(*partitions)
records = []
deadline = time.time() + 30
reached = None
while time.time() < deadline and (reached is None or time.time() < reached + 1):
    for batch in consumer.poll(timeout_ms=200).values():
        records.extend(batch)
    if reached is None and len(records) >= expected:
        reached = time.time()
for r in records:
    print(json.dumps({
        "partition": r.partition,
        "offset": r.offset,
        "key": r.key.decode() if r.key is not None else None,
        "value": r.value.decode(),
    }))
