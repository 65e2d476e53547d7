#!/usr/bin/env python3
"""A plugin rejection as nats-py sees it.

Usage: python3 test_plugin_reject.py nats://127.0.0.1:PORT

The server runs the size-gate transformer on `data.>` with `on_failure: reject` and
`max_bytes: 8`, with JetStream on. A rejected publisher must stay connected and learn the
reason: the error callback (plain publish), a 403 status reply (request), a JetStream API
error (js.publish). Exits 0 when every check passes, 1 otherwise.
"""

import asyncio
import sys
import time

import nats
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import APIError

from test_compat import CheckFailed, check

REASON = "payload of 9 bytes is over the limit of 8"
TIMEOUT = 5.0


async def main(url):
    errors = asyncio.Queue()
    disconnects = []

    async def error_cb(e):
        await errors.put(str(e))

    async def disconnected_cb():
        disconnects.append(time.monotonic())

    nc = await nats.connect(
        url, error_cb=error_cb, disconnected_cb=disconnected_cb, allow_reconnect=False
    )
    sub = await nc.subscribe("data.plain")

    # 1. Plain publish: the error callback gets the reason, the connection stays up.
    await nc.publish("data.plain", b"123456789")
    try:
        err = await asyncio.wait_for(errors.get(), TIMEOUT)
    except asyncio.TimeoutError:
        raise CheckFailed("the error callback was not called")
    # nats-py lower-cases the server's error text.
    check(
        "permissions violation for publish to \"data.plain\"" in err and REASON in err,
        f"error callback got {err!r}",
    )
    await nc.publish("data.plain", b"ok")
    try:
        m = await sub.next_msg(timeout=TIMEOUT)
    except NatsTimeoutError:
        raise CheckFailed("no message after the rejection")
    check(m.data == b"ok", f"got {m.data!r}")
    check(nc.is_connected and not disconnects, "disconnected after a rejection")
    print("ok   error_callback")

    # 2. A request: a fast reply whose status is 403 with the reason as its description.
    started = time.monotonic()
    reply = await nc.request("data.req", b"123456789", timeout=TIMEOUT)
    took = time.monotonic() - started
    hdrs = reply.headers or {}
    check(
        hdrs.get("Status") == "403" and hdrs.get("Description") == REASON,
        f"request reply headers {hdrs!r}",
    )
    check(took < 1.0, f"the rejected request took {took:.2f}s")
    print("ok   request_status")

    # 3. JetStream: js.publish raises an APIError carrying the plugin's reason.
    js = nc.jetstream()
    await js.add_stream(name="DATA", subjects=["data.js.>"])
    started = time.monotonic()
    try:
        ack = await js.publish("data.js.1", b"123456789", timeout=TIMEOUT)
        raise CheckFailed(f"a rejected JetStream publish was acknowledged: {ack}")
    except APIError as e:
        took = time.monotonic() - started
        check(
            e.description == REASON and e.code == 400 and e.err_code == 10900,
            f"js.publish error {e!r}",
        )
        check(took < 1.0, f"the rejected js.publish took {took:.2f}s")
    ack = await js.publish("data.js.2", b"small", timeout=TIMEOUT)
    check(ack.seq == 1, f"ack {ack}")
    check(nc.is_connected and not disconnects, "disconnected after a JetStream rejection")
    print("ok   jetstream_error")

    await nc.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        asyncio.run(main(sys.argv[1]))
    except CheckFailed as e:
        print(f"FAIL {e}")
        sys.exit(1)
