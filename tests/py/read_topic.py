"""Reads every record of a topic with kafka-python (an independent client)
and prints them as one JSON list of {partition, offset, key, value}."""
import json
import sys

from kafka import KafkaConsumer, TopicPartition

brokers, topic = sys.argv[1], sys.argv[2]
consumer = KafkaConsumer(bootstrap_servers=brokers, enable_auto_commit=False,
                         consumer_timeout_ms=10000)
parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
assert parts, f"topic {topic} has no partitions"
consumer.assign(parts)
consumer.seek_to_beginning(*parts)
end = consumer.end_offsets(parts)
records = []
while any(consumer.position(tp) < end[tp] for tp in parts):
    for tp, batch in consumer.poll(timeout_ms=2000).items():
        for r in batch:
            records.append({
                "partition": r.partition,
                "offset": r.offset,
                "key": r.key.decode() if r.key is not None else None,
                "value": r.value.decode(),
            })
print(json.dumps(records))
