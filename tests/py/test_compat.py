#!/usr/bin/env python3
"""Client-compatibility checks with the official Python client (nats-py).

Usage: python3 test_compat.py nats://127.0.0.1:PORT [--user U --password P]

Plain asyncio, no pytest. Exits 0 when every check passes, 1 on the first
failure (with a message naming the check), 2 on bad usage / missing nats-py.
"""

import asyncio
import sys
import time

try:
    import nats
    from nats.errors import NoRespondersError, TimeoutError as NatsTimeoutError
except ImportError as exc:  # pragma: no cover
    print(f"nats-py is not installed ({exc}); run `pip install nats-py`", file=sys.stderr)
    sys.exit(2)

TIMEOUT = 5.0


class CheckFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


async def sync(nc):
    """Round trip through the server on nc's own connection, so everything
    sent before (SUBs) has been processed. nc.flush() is not enough with
    nats-py 2.16: its PING bypasses the pending buffer and can overtake a SUB.
    """
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(inbox, b"sync")
    await next_msg(sub, "sync round trip")
    await sub.unsubscribe()


async def next_msg(sub, what):
    try:
        return await sub.next_msg(timeout=TIMEOUT)
    except NatsTimeoutError:
        raise CheckFailed(f"timed out waiting for {what}")


async def no_msg(sub, what, quiet=0.2):
    try:
        m = await sub.next_msg(timeout=quiet)
    except NatsTimeoutError:
        return
    raise CheckFailed(f"{what}: unexpected message on {m.subject}: {m.data!r}")


async def pub_sub(nc, nc2):
    sub = await nc.subscribe("py.greet")
    await sync(nc)
    for i in range(5):
        await nc2.publish("py.greet", f"hello {i}".encode())
    await nc2.flush()
    for i in range(5):
        m = await next_msg(sub, "py.greet")
        check(m.subject == "py.greet", f"subject {m.subject}")
        check(m.data == f"hello {i}".encode(), f"payload {m.data!r} (in order)")
    await no_msg(sub, "py.greet after 5")
    await sub.unsubscribe()


async def wildcards(nc, nc2):
    star = await nc.subscribe("py.w.*")
    full = await nc.subscribe("py.w.>")
    await sync(nc)
    for s in ["py.w.a", "py.w.a.b", "py.x.a", "py.w"]:
        await nc2.publish(s, s.encode())
    await nc2.flush()
    m = await next_msg(star, "py.w.* message")
    check(m.subject == "py.w.a", f"py.w.* got {m.subject}")
    await no_msg(star, "py.w.*")
    got = [(await next_msg(full, "py.w.> message")).subject for _ in range(2)]
    check(got == ["py.w.a", "py.w.a.b"], f"py.w.> got {got}")
    await no_msg(full, "py.w.>")


async def queue_group(nc, nc2):
    counts = [0, 0, 0]
    subs = []
    for i in range(3):
        async def cb(msg, i=i):
            counts[i] += 1
        subs.append(await nc.subscribe("py.q", queue="workers", cb=cb))
    plain = []

    async def plain_cb(msg):
        plain.append(msg.data)
    subs.append(await nc.subscribe("py.q", cb=plain_cb))
    await sync(nc)
    n = 300
    for i in range(n):
        await nc2.publish("py.q", str(i).encode())
    await nc2.flush()
    deadline = time.monotonic() + TIMEOUT
    while (sum(counts) < n or len(plain) < n) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    check(sum(counts) == n, f"queue group got {sum(counts)} of {n} (each exactly once): {counts}")
    check(len(plain) == n, f"plain subscriber got {len(plain)} of {n}")
    check(all(c >= n // 10 for c in counts), f"unfair distribution {counts}")
    for s in subs:
        await s.unsubscribe()


async def request_reply(nc, nc2):
    async def responder(msg):
        await msg.respond(msg.data.upper())
    sub = await nc.subscribe("py.svc", cb=responder)
    await sync(nc)
    for i in range(5):
        resp = await nc2.request("py.svc", f"ping {i}".encode(), timeout=TIMEOUT)
        check(resp.data == f"PING {i}".encode(), f"reply {resp.data!r}")
    await sub.unsubscribe()


async def headers(nc, nc2):
    sub = await nc.subscribe("py.hdr")
    await sync(nc)
    await nc2.publish("py.hdr", b"body", headers={"X-One": "1", "X-Two": "two"})
    await nc2.flush()
    m = await next_msg(sub, "message with headers")
    check(m.data == b"body", f"payload {m.data!r}")
    check(m.headers is not None, "headers missing")
    check(m.headers.get("X-One") == "1", f"X-One = {m.headers.get('X-One')!r}")
    check(m.headers.get("X-Two") == "two", f"X-Two = {m.headers.get('X-Two')!r}")
    await sub.unsubscribe()


async def no_responders(nc, nc2):
    start = time.monotonic()
    try:
        await nc2.request("py.nobody.home", b"anyone?", timeout=TIMEOUT)
    except NoRespondersError:
        elapsed = time.monotonic() - start
        check(elapsed < 2.0, f"no-responders took {elapsed:.2f}s")
        return
    except NatsTimeoutError:
        raise CheckFailed("request timed out instead of failing with NoResponders")
    raise CheckFailed("request to a subject without subscribers got a reply")


CHECKS = [pub_sub, wildcards, queue_group, request_reply, headers, no_responders]


async def main(url, user=None, password=None):
    kwargs = {"connect_timeout": TIMEOUT, "max_reconnect_attempts": 0, "allow_reconnect": False}
    if user is not None:
        kwargs.update(user=user, password=password)
    nc = await nats.connect(url, **kwargs)
    nc2 = await nats.connect(url, **kwargs)
    info = nc._server_info
    check(info.get("headers") is True, f"server INFO lacks headers:true: {info}")
    failed = 0
    for c in CHECKS:
        try:
            await asyncio.wait_for(c(nc, nc2), timeout=20)
            print(f"ok   {c.__name__}")
        except (CheckFailed, asyncio.TimeoutError, Exception) as exc:  # noqa: BLE001
            failed += 1
            print(f"FAIL {c.__name__}: {type(exc).__name__}: {exc}", file=sys.stderr)
    await nc.drain()
    await nc2.drain()
    print(f"{len(CHECKS) - failed} passed, {failed} failed")
    return failed


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    url = args[0]
    user = password = None
    if "--user" in args:
        user = args[args.index("--user") + 1]
        password = args[args.index("--password") + 1]
    try:
        failures = asyncio.run(main(url, user, password))
    except Exception as exc:  # noqa: BLE001
        print(f"FAIL setup: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
    sys.exit(1 if failures else 0)
