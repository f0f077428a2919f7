"""A backend team's view of gavel's output contract, from Python.

Generates stubs from proto/ with grpcio-tools' protoc, produces 2,000 bid
events (1,000 protobuf, 1,000 proto3 JSON, built with those stubs), runs the
gavel binary once per output encoding (protobuf, json, and protobuf framed
for a schema registry that this script serves), and decodes every signal,
action and verdict with the standard deserialiser of that encoding:
`Message.FromString`, `json_format.Parse` (strict: an unknown field fails)
and confluent_kafka's `ProtobufDeserializer`. Every output must decode and
name its schema in headers; every event must get exactly one verdict.

Usage: check.py BROKERS GAVEL_BINARY REPO_ROOT
"""

import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid

EVENTS = 2000


def generate_stubs(root, out):
    from grpc_tools import protoc
    import grpc_tools

    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    files = ["gavel/v1/common.proto", "gavel/v1/events.proto", "gavel/v1/risk.proto"]
    args = ["protoc", f"-I{root}/proto", f"-I{include}", f"--python_out={out}"] + files
    if protoc.main(args) != 0:
        sys.exit("protoc failed on proto/")
    sys.path.insert(0, out)


class Registry(http.server.BaseHTTPRequestHandler):
    """Registers schemas like a Confluent schema registry: one id per
    distinct (schema, references), versions counted per subject."""

    registered = []  # (subject, schema, references, id, version)

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        parts = [p for p in self.path.split("/") if p]
        subject = urllib.parse.unquote(parts[1])
        key = (body["schema"], json.dumps(body.get("references", []), sort_keys=True))
        found = [r for r in self.registered if r[0] == subject and (r[1], r[2]) == key]
        if parts[-1] == "versions":
            if not found:
                same = [r[3] for r in self.registered if (r[1], r[2]) == key]
                sid = same[0] if same else 1 + len(self.registered)
                version = 1 + len([r for r in self.registered if r[0] == subject])
                self.registered.append((subject, key[0], key[1], sid, version))
                found = [self.registered[-1]]
            self.answer(200, {"id": found[0][3]})
        elif found:
            self.answer(200, {"subject": subject, "id": found[0][3], "version": found[0][4]})
        else:
            self.answer(404, {"error_code": 40403, "message": "Schema not found"})

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    brokers, gavel, root = sys.argv[1:4]
    work = tempfile.mkdtemp(prefix="gavel-consumer-check-")
    generate_stubs(root, work)
    from gavel.v1 import events_pb2, risk_pb2, common_pb2  # noqa: F401
    from google.protobuf import json_format
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    registry_url = f"http://127.0.0.1:{server.server_address[1]}"

    os.makedirs(f"{work}/pack")
    with open(f"{work}/pack/pack.yaml", "w") as f:
        f.write(
            'version: "py-1"\n'
            "features:\n"
            "  - {name: bids_10m, on: [bid_placed], key: event.user_id, window: 10m, aggregate: count}\n"
            "rules:\n"
            "  - id: fast_bidder\n"
            "    description: three bids within ten minutes\n"
            "    on: [bid_placed]\n"
            "    when: features.bids_10m >= 3\n"
            "    score: 70\n"
            "    actions: [{type: block_bid, target: bid, id: event.bid_placed.bid_id}]\n"
        )

    run = uuid.uuid4().hex[:8]
    proto_in, json_in = f"py-{run}-bids-pb", f"py-{run}-bids-json"
    admin = AdminClient({"bootstrap.servers": brokers})
    producer = Producer({"bootstrap.servers": brokers, "linger.ms": 5})
    now = time.time()
    for n in range(EVENTS):
        event = events_pb2.Event(event_id=f"ev-{n}", user_id=f"u{n % 50}")
        event.occurred_at.FromMilliseconds(int(now * 1000) + n)
        event.bid_placed.bid_id = f"bid-{n}"
        event.bid_placed.listing_id = "l1"
        event.bid_placed.amount.amount_minor = 1000
        event.bid_placed.amount.currency = "USD"
        if n % 2 == 0:
            producer.produce(proto_in, key=event.user_id, value=event.SerializeToString())
        else:
            producer.produce(json_in, key=event.user_id, value=json_format.MessageToJson(event))
        producer.poll(0)

    results = {}
    for mode in ["protobuf", "json", "registry"]:
        outs = {t: f"py-{run}-{mode}-{t}" for t in ["signals", "actions", "verdicts", "shadow", "dlq"]}
        topics = [proto_in, json_in] + list(outs.values())
        for future in admin.create_topics([NewTopic(t, 2, 1) for t in topics]).values():
            try:
                future.result()
            except Exception as e:  # the inputs exist after the first mode
                if "TOPIC_ALREADY_EXISTS" not in str(e):
                    raise
        producer.flush(30)
        encoding = "json" if mode == "json" else "protobuf"
        registry = registry_url if mode == "registry" else ""
        config = f"{work}/{mode}.toml"
        with open(config, "w") as f:
            f.write(
                f'pack = "{work}/pack"\nadmin_addr = "127.0.0.1:0"\n'
                f'[kafka]\nbrokers = "{brokers}"\ngroup_id = "py-{run}-{mode}"\n'
                'first_start = "earliest"\nshards = 1\n'
                f'[[inputs]]\ntopic = "{proto_in}"\nencoding = "protobuf"\n'
                f'[[inputs]]\ntopic = "{json_in}"\nencoding = "json"\n'
                "[outputs]\nemit_verdicts = true\n"
                + "".join(f'{t} = "{name}"\n' for t, name in outs.items())
                + f'encoding = "{encoding}"\n[outputs.schema_registry]\nurl = "{registry}"\n'
            )
        log = open(f"{work}/{mode}.log", "w")
        process = subprocess.Popen([gavel, "run", "--config", config], stderr=log, stdout=log)
        try:
            results[mode] = consume(brokers, outs, mode, risk_pb2, json_format, ProtobufDeserializer,
                                    SerializationContext, MessageField, Consumer)
        finally:
            process.terminate()
            process.wait(30)
        print(f"{mode}: {results[mode]}")
    server.shutdown()
    # Which bids fire depends on how the two input topics interleave, so
    # only the verdicts (one per event) compare exactly.
    for mode, counts in results.items():
        assert counts["verdicts"] == EVENTS and counts["signals"] > 0 and counts["actions"] > 0, (mode, counts)
    print(f"every output decoded in each encoding; {EVENTS} events, {EVENTS} verdicts each")


def consume(brokers, outs, mode, risk_pb2, json_format, ProtobufDeserializer, SerializationContext,
            MessageField, Consumer):
    types = {"signals": risk_pb2.RiskSignal, "actions": risk_pb2.AutoAction, "verdicts": risk_pb2.Verdict}
    consumer = Consumer({"bootstrap.servers": brokers, "group.id": f"reader-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([outs[t] for t in types])
    by_topic = {outs[t]: t for t in types}
    deserialisers = {t: ProtobufDeserializer(types[t], {"use.deprecated.format": False}) for t in types}
    seen = {t: set() for t in types}
    deadline = time.time() + 120
    idle_since = time.time()
    # Until every verdict is in and nothing more arrived for 3 s.
    while time.time() < deadline and (len(seen["verdicts"]) < EVENTS or time.time() - idle_since < 3):
        m = consumer.poll(0.5)
        if m is None:
            continue
        idle_since = time.time()
        if m.error():
            raise SystemExit(f"consumer error: {m.error()}")
        kind = by_topic[m.topic()]
        headers = {k: (v or b"").decode() for k, v in (m.headers() or [])}
        assert headers["gavel.schema"] == types[kind].DESCRIPTOR.full_name, headers
        assert headers["gavel.pack.version"] == "py-1", headers
        if mode == "protobuf":
            assert headers["content-type"] == "application/x-protobuf", headers
            message = types[kind].FromString(m.value())
        elif mode == "json":
            assert headers["content-type"] == "application/json", headers
            message = json_format.Parse(m.value(), types[kind]())
        else:
            assert headers["content-type"] == "application/vnd.confluent.protobuf", headers
            message = deserialisers[kind](m.value(), SerializationContext(m.topic(), MessageField.VALUE))
        ident = message.action_id if kind == "actions" else message.event_id
        seen[kind].add(ident)
    consumer.close()
    if len(seen["verdicts"]) != EVENTS:
        raise SystemExit(f"{mode}: {len(seen['verdicts'])} of {EVENTS} verdicts decoded within 120 s")
    return {t: len(s) for t, s in seen.items()}


if __name__ == "__main__":
    main()
