#!/usr/bin/env python3
"""JetStream stream-API checks with the official Python client (nats-py).

Usage: python3 test_jetstream.py nats://127.0.0.1:PORT

The server must run with JetStream enabled (`-js -sd <dir>`). Plain asyncio, no
pytest. Prints `ok   <check>` per passing check; exits 0 when every check
passes, 1 on the first failure (with a message naming the check), 2 on bad
usage / missing nats-py.
"""

import asyncio
import sys

try:
    import nats
    from nats.errors import NoRespondersError
    from nats.js.errors import (
        APIError,
        BadRequestError,
        KeyNotFoundError,
        KeyWrongLastSequenceError,
        NoStreamResponseError,
        NotFoundError,
    )
except ImportError as exc:  # pragma: no cover
    print(f"nats-py is not installed ({exc}); run `pip install nats-py`", file=sys.stderr)
    sys.exit(2)

TIMEOUT = 5.0


class CheckFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


async def stream_lifecycle(js):
    info = await js.add_stream(name="PY", subjects=["py.>"])
    check(info.config.name == "PY", f"add_stream config: {info.config}")
    check(info.state.messages == 0, f"fresh stream state: {info.state}")
    info = await js.stream_info("PY")
    check(info.config.subjects == ["py.>"], f"stream_info subjects: {info.config.subjects}")
    names = await js.streams_info()
    check([s.config.name for s in names] == ["PY"], f"streams_info: {names}")


async def publish_with_ack(js):
    for i in range(1, 6):
        ack = await js.publish("py.events", f"event {i}".encode(), timeout=TIMEOUT)
        check(ack.stream == "PY", f"ack stream: {ack}")
        check(ack.seq == i, f"publish {i} acked with seq {ack.seq}")
        check(not ack.duplicate, f"ack duplicate: {ack}")
    info = await js.stream_info("PY")
    check(info.state.messages == 5, f"state after 5 publishes: {info.state}")
    check(info.state.last_seq == 5, f"last_seq: {info.state}")
    try:
        await js.publish("nostream.here", b"x", timeout=TIMEOUT)
    except NoStreamResponseError:
        pass  # nats-py's name for "no responders" on a JetStream publish
    else:
        raise CheckFailed("publish with no stream was acked")


async def dedupe(js):
    hdrs = {"Nats-Msg-Id": "py-1"}
    a = await js.publish("py.dedupe", b"first", headers=hdrs, timeout=TIMEOUT)
    b = await js.publish("py.dedupe", b"second", headers=hdrs, timeout=TIMEOUT)
    check(not a.duplicate, f"first ack: {a}")
    check(b.duplicate, f"second ack must be a duplicate: {b}")
    check(b.seq == a.seq, f"duplicate seq {b.seq} != original {a.seq}")
    info = await js.stream_info("PY")
    check(info.state.messages == 6, f"dedupe stored one message: {info.state}")


async def get_and_delete(js):
    msg = await js.get_msg("PY", 6)
    check(msg.seq == 6, f"get_msg seq: {msg.seq}")
    check(msg.subject == "py.dedupe", f"get_msg subject: {msg.subject}")
    check(msg.data == b"first", f"get_msg data: {msg.data!r}")
    check(msg.headers and msg.headers.get("Nats-Msg-Id") == "py-1", f"get_msg headers: {msg.headers}")
    last = await js.get_msg("PY", subject="py.events")
    check(last.seq == 5 and last.data == b"event 5", f"last by subject: {last.seq} {last.data!r}")
    ok = await js.delete_msg("PY", 1)
    check(ok, "delete_msg returned false")
    try:
        await js.get_msg("PY", 1)
    except NotFoundError as e:
        check(e.err_code == 10037, f"get of a deleted message: {e}")
    else:
        raise CheckFailed("get_msg of a deleted message succeeded")
    info = await js.stream_info("PY")
    check(info.state.messages == 5, f"state after delete: {info.state}")
    check(info.state.first_seq == 2, f"first_seq after deleting 1: {info.state}")


async def purge(js):
    check(await js.purge_stream("PY", subject="py.dedupe"), "purge by subject")
    info = await js.stream_info("PY")
    check(info.state.messages == 4, f"after subject purge: {info.state}")
    check(await js.purge_stream("PY"), "full purge")
    info = await js.stream_info("PY")
    check(info.state.messages == 0, f"after full purge: {info.state}")
    check(info.state.last_seq == 6, f"purge keeps the sequence: {info.state}")
    ack = await js.publish("py.events", b"after purge", timeout=TIMEOUT)
    check(ack.seq == 7, f"seq after purge: {ack.seq}")


async def errors(js):
    try:
        await js.add_stream(name="PY2", subjects=["py.x"])
    except BadRequestError as e:
        check(e.err_code == 10065, f"overlapping subjects: {e}")
    else:
        raise CheckFailed("a stream overlapping py.> was created")
    try:
        await js.stream_info("NOPE")
    except NotFoundError as e:
        check(e.err_code == 10059, f"missing stream info: {e}")
    else:
        raise CheckFailed("stream_info of a missing stream succeeded")


async def delete_stream(js):
    check(await js.delete_stream("PY"), "delete_stream returned false")
    try:
        await js.stream_info("PY")
    except NotFoundError as e:
        check(e.err_code == 10059, f"deleted stream info: {e}")
    else:
        raise CheckFailed("a deleted stream still has info")


async def kv_put_get(js):
    # nats-py's kv.get reads with STREAM.MSG.GET {"last_by_subj"} (or, on a bucket with
    # direct=True, with DIRECT.GET.<stream>.<subject>): no consumer is involved. Watch, keys
    # and history need consumers, so they are not exercised here.
    for bucket, direct in (("PYKV", None), ("PYKVD", True)):
        kv = await js.create_key_value(bucket=bucket, history=5, direct=direct)
        info = await js.stream_info(f"KV_{bucket}")
        check(info.config.subjects == [f"$KV.{bucket}.>"], f"{bucket} subjects: {info.config}")
        check(info.config.max_msgs_per_subject == 5, f"{bucket} history: {info.config}")
        check(bool(info.config.allow_direct) == bool(direct), f"{bucket} allow_direct: {info.config}")
        r1 = await kv.put("color", b"red")
        check(r1 == 1, f"{bucket}: first put revision {r1}")
        entry = await kv.get("color")
        check(entry.value == b"red" and entry.revision == 1, f"{bucket} get: {entry}")
        r2 = await kv.update("color", b"blue", last=r1)
        check(r2 == 2, f"{bucket}: update revision {r2}")
        try:
            await kv.update("color", b"green", last=r1)
        except KeyWrongLastSequenceError:
            pass
        else:
            raise CheckFailed(f"{bucket}: an update at a stale revision succeeded")
        try:
            await kv.create("color", b"green")
        except KeyWrongLastSequenceError:
            pass
        else:
            raise CheckFailed(f"{bucket}: create of an existing key succeeded")
        entry = await kv.get("color")
        check(entry.value == b"blue" and entry.revision == 2, f"{bucket} get after update: {entry}")
        old = await kv.get("color", revision=1)
        check(old.value == b"red", f"{bucket} get revision 1: {old}")
        try:
            await kv.get("missing")
        except KeyNotFoundError:
            pass
        else:
            raise CheckFailed(f"{bucket}: get of a missing key succeeded")
        check(await kv.delete("color"), f"{bucket}: delete returned false")
        try:
            await kv.get("color")
        except KeyNotFoundError:
            pass
        else:
            raise CheckFailed(f"{bucket}: get of a deleted key succeeded")
        r4 = await kv.create("color", b"again")
        check(r4 == 4, f"{bucket}: create after delete revision {r4}")
        entry = await kv.get("color")
        check(entry.value == b"again", f"{bucket} get after re-create: {entry}")


CHECKS = [
    ("stream_lifecycle", stream_lifecycle),
    ("publish_with_ack", publish_with_ack),
    ("dedupe", dedupe),
    ("get_and_delete", get_and_delete),
    ("purge", purge),
    ("errors", errors),
    ("delete_stream", delete_stream),
    ("kv_put_get", kv_put_get),
]


async def run_checks(checks):
    """Runs `checks` ((name, async fn(js)) pairs) against the server at argv[1]; prints
    `ok   <name>` per passing check and returns the exit status."""
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    nc = await nats.connect(sys.argv[1], connect_timeout=TIMEOUT, max_reconnect_attempts=0)
    js = nc.jetstream(timeout=TIMEOUT)
    try:
        for name, fn in checks:
            try:
                await asyncio.wait_for(fn(js), timeout=30)
            except CheckFailed as e:
                print(f"FAIL {name}: {e}", file=sys.stderr)
                return 1
            except (APIError, NoRespondersError, asyncio.TimeoutError, nats.errors.Error) as e:
                print(f"FAIL {name}: unexpected {type(e).__name__}: {e}", file=sys.stderr)
                return 1
            print(f"ok   {name}", flush=True)
    finally:
        await nc.close()
    return 0


async def main():
    return await run_checks(CHECKS)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
