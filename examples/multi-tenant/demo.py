#!/usr/bin/env python3
"""Multi-tenant demo: two tenants on one natrium, authenticated by the jwt-authorizer plugin,
isolated in their own accounts, with PII redaction on one tenant's customers.> subjects.

    python3 -m pip install nats-py     # the official NATS client for Python
    python3 examples/multi-tenant/demo.py [--url nats://127.0.0.1:4222]

Needs a natrium started with natrium.conf from this directory (see README.md). Prints every
check; exits 0 when all pass, 1 when any fails, 2 when the broker cannot be reached.
"""

import argparse
import asyncio
import json
import os
import sys

try:
    import nats
    from nats.errors import TimeoutError as NatsTimeout
except ImportError:  # pragma: no cover - depends on the machine
    print("demo.py: needs nats-py: python3 -m pip install nats-py", file=sys.stderr)
    sys.exit(2)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mint_token import mint  # noqa: E402  (the stdlib-only minter next to this file)

WAIT = 2.0  # seconds to wait for a message that must arrive
QUIET = 0.5  # seconds during which a message must NOT arrive

FAILED = []


def check(ok: bool, what: str, detail: str = "") -> None:
    print(f"  [{'ok' if ok else 'FAIL'}] {what}" + (f" — {detail}" if detail and not ok else ""))
    if not ok:
        FAILED.append(what)


class Tenant:
    """One client connection plus the asynchronous errors the server sent it."""

    def __init__(self, label: str):
        self.label = label
        self.errors: list[str] = []
        self.nc = None

    async def connect(self, url: str, token: str) -> None:
        async def on_error(e: Exception) -> None:
            self.errors.append(str(e))

        self.nc = await nats.connect(
            servers=[url],
            token=token,
            name=f"demo-{self.label}",
            error_cb=on_error,
            allow_reconnect=False,
            max_reconnect_attempts=1,  # nats-py: 0 would retry the first connect forever
            connect_timeout=3,
        )


async def expect_msg(sub, what: str):
    try:
        return await sub.next_msg(timeout=WAIT)
    except NatsTimeout:
        check(False, what, f"nothing arrived within {WAIT}s")
        return None


async def expect_nothing(sub, what: str) -> None:
    try:
        m = await sub.next_msg(timeout=QUIET)
        check(False, what, f"got {m.subject} {m.data!r}")
    except NatsTimeout:
        check(True, what)


async def refused(url: str, token, what: str) -> None:
    """A connection with `token` must be refused with an authorization error."""
    nc = None
    try:
        nc = await nats.connect(
            servers=[url],
            token=token,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            connect_timeout=3,
            error_cb=_ignore,
        )
        check(False, what, "the connection was accepted")
    except Exception as e:  # nats-py raises its own error types, or asyncio's
        msg = str(e) or type(e).__name__
        check("authorization" in msg.lower(), what, f"unexpected error: {msg}")
    finally:
        if nc is not None and not nc.is_closed:
            await nc.close()


async def _ignore(_e: Exception) -> None:
    pass


async def reachable(url: str) -> None:
    """Raises OSError unless a NATS server answers at `url` with its INFO line."""
    hostport = url.split("://", 1)[-1].rsplit("@", 1)[-1]
    host, _, port = hostport.rpartition(":")
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host.strip("[]") or "127.0.0.1", int(port or 4222)), 3
        )
        try:
            line = await asyncio.wait_for(reader.readline(), 3)
        finally:
            writer.close()
    except asyncio.TimeoutError as e:
        raise ConnectionError("no answer within 3s") from e
    if not line.startswith(b"INFO "):
        raise OSError(f"not a NATS server (first line {line[:40]!r})")


async def run(url: str) -> None:
    await reachable(url)
    acme, globex = Tenant("acme"), Tenant("globex")

    print("1. Tenants log in with tokens from their identity provider (jwt-authorizer plugin)")
    await acme.connect(url, mint("acme", "alice"))
    check(acme.nc.is_connected, "acme/alice connected with an HS256 token")
    await globex.connect(url, mint("globex", "gus"))
    check(globex.nc.is_connected, "globex/gus connected with an HS256 token")
    await refused(url, mint("acme", "mallory", secret="not-the-right-secret-at-all"),
                  "a token signed with the wrong secret is refused")
    await refused(url, mint("acme", "alice", ttl=-3600), "an expired token is refused")
    await refused(url, mint("initech", "bob"), "a token for an unknown tenant is refused")
    await refused(url, None, "a client without a token is refused")

    print("2. Each tenant lives in its own account: same subjects, no crosstalk")
    acme_orders = await acme.nc.subscribe("orders.>")
    globex_orders = await globex.nc.subscribe("orders.>")
    await acme.nc.flush()
    await globex.nc.flush()
    await acme.nc.publish("orders.created", b"acme order 1")
    await acme.nc.flush()
    m = await expect_msg(acme_orders, "acme receives its own order")
    if m:
        check(m.data == b"acme order 1", "acme's order arrives unchanged", repr(m.data))
    await expect_nothing(globex_orders, "globex does not see acme's order on the same subject")
    await globex.nc.publish("orders.created", b"globex order 1")
    await globex.nc.flush()
    m = await expect_msg(globex_orders, "globex receives its own order")
    if m:
        check(m.data == b"globex order 1", "globex's order arrives unchanged", repr(m.data))
    await expect_nothing(acme_orders, "acme does not see globex's order")

    print("3. Permissions come from the token's tenant")
    await acme.nc.publish("admin.reset", b"x")
    await acme.nc.flush()
    await asyncio.sleep(0.2)  # the -ERR is asynchronous
    check(any("permissions violation" in e.lower() for e in acme.errors),
          "acme may not publish outside orders.> and customers.>", f"errors seen: {acme.errors}")
    check(acme.nc.is_connected, "a permissions violation does not disconnect the client")

    print("4. ACME's customer records are redacted (pii-redactor plugin, ACME only)")
    record = {"name": "Ann", "email": "ann@example.com", "card": "4111 1111 1111 1111"}
    raw = json.dumps(record).encode()
    acme_cust = await acme.nc.subscribe("customers.>")
    globex_cust = await globex.nc.subscribe("customers.>")
    await acme.nc.flush()
    await globex.nc.flush()
    await acme.nc.publish("customers.signup", raw)
    await acme.nc.flush()
    m = await expect_msg(acme_cust, "acme receives the customer record")
    if m:
        got = json.loads(m.data)
        want = {"name": "Ann", "email": "[REDACTED:email]", "card": "****1111"}
        check(got == want, "e-mail and card number are redacted before any subscriber sees them",
              f"got {m.data!r}")
        hdr = (m.headers or {}).get("Natrium-Redacted")
        check(hdr == "email=1,card=1", "the Natrium-Redacted header says what was removed",
              f"headers {m.headers}")
        print(f"       acme sent     {raw.decode()}")
        print(f"       acme received {m.data.decode()}  (Natrium-Redacted: {hdr})")
    await expect_nothing(globex_cust, "globex does not see acme's customer record")

    await acme.nc.publish("orders.note", b"call ann@example.com")
    await acme.nc.flush()
    m = await expect_msg(acme_orders, "acme's orders.> message arrives")
    if m:
        check(m.data == b"call ann@example.com", "redaction applies to customers.> only",
              repr(m.data))

    await globex.nc.publish("customers.signup", raw)
    await globex.nc.flush()
    m = await expect_msg(globex_cust, "globex receives its customer record")
    if m:
        check(m.data == raw and not (m.headers or {}).get("Natrium-Redacted"),
              "globex's records are not redacted (the plugin is bound to ACME)",
              f"got {m.data!r} headers {m.headers}")

    await acme.nc.close()
    await globex.nc.close()


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    ap.add_argument("--timeout", type=float, default=60.0, help="cap for the whole demo (s)")
    a = ap.parse_args()
    try:
        await asyncio.wait_for(run(a.url), a.timeout)
    except asyncio.TimeoutError:
        print(f"demo.py: did not finish within {a.timeout}s", file=sys.stderr)
        return 1
    except (ConnectionError, OSError, nats.errors.NoServersError) as e:
        print(f"demo.py: cannot reach natrium at {a.url}: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # e.g. a tenant whose valid token was refused
        print(f"demo.py: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if FAILED:
        print(f"\n{len(FAILED)} check(s) failed:", *FAILED, sep="\n  - ")
        return 1
    print("\nAll checks passed: tenants authenticated by the JWT plugin, isolated, redacted.")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
