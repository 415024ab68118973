#!/usr/bin/python3
"""Consume messages the way fedora-messaging's consumer reads them.

Usage: consume.py HOST PORT CA CERT KEY QUEUE COUNT TIMEOUT

Logs in by certificate (EXTERNAL), takes COUNT messages from QUEUE within
TIMEOUT seconds, checks each one's properties and headers as
fedora-messaging does, and prints one JSON line per message:
{"routing_key", "message_id", "headers", "body", "problems"}.
"""
import datetime
import json
import ssl
import sys
import time
import uuid

import pika

host, port, ca, cert, key, queue, count, timeout = sys.argv[1:9]
count, timeout = int(count), float(timeout)

ctx = ssl.create_default_context(cafile=ca)
ctx.load_cert_chain(cert, key)
params = pika.ConnectionParameters(
    host=host, port=int(port), virtual_host="/",
    credentials=pika.credentials.ExternalCredentials(),
    ssl_options=pika.SSLOptions(ctx, "localhost"))
conn = pika.BlockingConnection(params)
ch = conn.channel()

deadline = time.monotonic() + timeout
got = 0
while got < count and time.monotonic() < deadline:
    method, props, body = ch.basic_get(queue, auto_ack=True)
    if method is None:
        time.sleep(0.1)
        continue
    got += 1
    problems = []
    headers = props.headers or {}
    if props.content_type != "application/json":
        problems.append("content_type %r" % props.content_type)
    if props.content_encoding != "utf-8":
        problems.append("content_encoding %r" % props.content_encoding)
    if props.delivery_mode != 2:
        problems.append("delivery_mode %r" % props.delivery_mode)
    try:
        if uuid.UUID(props.message_id).version != 4:
            problems.append("message_id %r is no version 4 UUID" % props.message_id)
    except (TypeError, ValueError):
        problems.append("message_id %r is no UUID" % props.message_id)
    for h in ("fedora_messaging_schema", "fedora_messaging_severity", "sent-at", "priority"):
        if h not in headers:
            problems.append("no %s header" % h)
    if headers.get("fedora_messaging_severity") not in (10, 20, 30, 40):
        problems.append("severity %r" % headers.get("fedora_messaging_severity"))
    try:
        sent = datetime.datetime.fromisoformat(headers.get("sent-at", ""))
        if sent.tzinfo is None:
            problems.append("sent-at has no zone")
        if sent.microsecond:
            problems.append("sent-at has a fraction of a second")
    except (TypeError, ValueError):
        problems.append("sent-at %r does not parse" % headers.get("sent-at"))
    try:
        decoded = json.loads(body.decode(props.content_encoding or "utf-8"))
    except ValueError as e:
        decoded = None
        problems.append("body is not JSON: %s" % e)
    if decoded is not None and not isinstance(decoded, dict):
        problems.append("body is not a JSON object")
    for k, v in headers.items():
        if isinstance(v, bytes):
            headers[k] = v.decode()
    print(json.dumps({"routing_key": method.routing_key, "message_id": props.message_id,
                      "headers": headers, "body": decoded, "problems": problems}), flush=True)
conn.close()
if got < count:
    sys.exit("consume.py: %d of %d messages within %ss" % (got, count, timeout))
