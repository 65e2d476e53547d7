#!/usr/bin/env python3
"""Key-value and object store checks with the official Python client (nats-py), the parts
that need consumers: history, keys, watchers, object listing and watching.

Usage: python3 test_kv.py nats://127.0.0.1:PORT

The server must run with JetStream enabled (`-js -sd <dir>`). Prints `ok   <check>` per
passing check; exits 0 when every check passes, 1 on the first failure.
"""

import asyncio
import base64
import hashlib
import sys

import nats
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NoKeysError, ObjectNotFoundError

from test_jetstream import CheckFailed, check, run_checks

WAIT = 5.0


async def kv_bucket_config(js):
    kv = await js.create_key_value(bucket="pykv", history=5, ttl=60)
    status = await kv.status()
    check(status.history == 5 and status.ttl == 60, f"status: {status}")
    cfg = (await js.stream_info("KV_pykv")).config
    check(cfg.subjects == ["$KV.pykv.>"], f"subjects {cfg.subjects}")
    check(cfg.max_msgs_per_subject == 5, f"max_msgs_per_subject {cfg.max_msgs_per_subject}")
    check(cfg.allow_rollup_hdrs and cfg.deny_delete, f"flags {cfg}")
    # nats-py 2.16 leaves allow_direct off unless asked (direct=True): its gets then use
    # $JS.API.STREAM.MSG.GET.KV_<b> with {"last_by_subj": ...} or {"seq": N}.
    check(not cfg.allow_direct, f"allow_direct {cfg}")
    check(str(cfg.discard) in ("new", "DiscardPolicy.NEW") and cfg.duplicate_window == 60, f"discard/window {cfg}")


async def kv_revisions(js):
    kv = await js.key_value("pykv")
    r1 = await kv.put("color", b"red")
    r2 = await kv.put("color", b"blue")
    check(r2 == r1 + 1, f"revisions {r1} {r2}")
    e = await kv.get("color")
    check(e.value == b"blue" and e.revision == r2, f"get {e}")
    old = await kv.get("color", revision=r1)
    check(old.value == b"red" and old.revision == r1, f"get revision {r1}: {old}")
    try:
        await kv.create("color", b"green")
    except KeyWrongLastSequenceError as err:
        check(f"wrong last sequence: {r2}" in str(err), f"create error text: {err}")
    else:
        raise CheckFailed("create of an existing key succeeded")
    try:
        await kv.update("color", b"green", last=r1)
    except KeyWrongLastSequenceError as err:
        check(f"wrong last sequence: {r2}" in str(err), f"update error text: {err}")
    else:
        raise CheckFailed("update at a stale revision succeeded")
    r3 = await kv.update("color", b"green", last=r2)
    check(r3 == r2 + 1, f"update revision {r3}")


async def kv_markers_history_keys(js):
    kv = await js.create_key_value(bucket="pyhist", history=3)
    for v in (b"1", b"2", b"3", b"4"):
        await kv.put("a", v)
    await kv.put("b", b"x")
    await kv.delete("b")
    hist = await kv.history("a")
    check([(e.revision, e.value) for e in hist] == [(2, b"2"), (3, b"3"), (4, b"4")], f"history a: {hist}")
    hist = await kv.history("b")
    check([(e.revision, e.operation) for e in hist] == [(5, None), (6, "DEL")], f"history b: {hist}")
    try:
        await kv.get("b")
    except KeyNotFoundError:
        pass
    else:
        raise CheckFailed("get of a deleted key succeeded")
    check(sorted(await kv.keys()) == ["a"], "keys after delete")
    await kv.purge("a")
    hist = await kv.history("a")
    check([(e.revision, e.operation) for e in hist] == [(7, "PURGE")], f"history after purge: {hist}")
    try:
        await kv.keys()
    except NoKeysError:
        pass
    else:
        raise CheckFailed("keys of a bucket with only markers")
    info = await js.stream_info("KV_pyhist")
    check(info.state.messages == 3, f"b put+del and a purge marker: {info.state}")


async def kv_watch(js):
    kv = await js.create_key_value(bucket="pywatch", history=5)
    await kv.put("x.1", b"a")
    await kv.put("x.2", b"b")
    await kv.put("x.1", b"c")
    w = await kv.watch("x.*")
    initial = []
    while True:
        e = await w.updates(timeout=WAIT)
        if e is None:
            break
        initial.append((e.key, e.revision, e.value))
    check(initial == [("x.2", 2, b"b"), ("x.1", 3, b"c")], f"initial values {initial}")
    allw = await kv.watchall()
    seen = []
    while True:
        e = await allw.updates(timeout=WAIT)
        if e is None:
            break
        seen.append(e.key)
    check(seen == ["x.2", "x.1"], f"watchall initial {seen}")
    await kv.put("x.2", b"d")
    await kv.put("y", b"e")
    await kv.delete("x.1")
    got = [await w.updates(timeout=WAIT) for _ in range(2)]
    check(
        [(e.key, e.revision, e.operation) for e in got] == [("x.2", 4, None), ("x.1", 6, "DEL")],
        f"updates {got}",
    )
    got = [await allw.updates(timeout=WAIT) for _ in range(3)]
    check([e.key for e in got] == ["x.2", "y", "x.1"], f"watchall updates {got}")
    await w.stop()
    await allw.stop()


async def kv_ttl(js):
    kv = await js.create_key_value(bucket="pyttl", history=1, ttl=1)
    await kv.put("k", b"v")
    check((await kv.get("k")).value == b"v", "get before expiry")
    for _ in range(40):
        try:
            await kv.get("k")
        except KeyNotFoundError:
            return
        await asyncio.sleep(0.2)
    raise CheckFailed("k did not expire after its 1 s ttl")


async def object_store(js):
    obs = await js.create_object_store("pyobj")
    cfg = (await js.stream_info("OBJ_pyobj")).config
    check(sorted(cfg.subjects) == ["$O.pyobj.C.>", "$O.pyobj.M.>"], f"subjects {cfg.subjects}")
    data = bytes(i % 251 for i in range(3 * 1024 * 1024 + 17))
    info = await obs.put("big.bin", data)
    digest = "SHA-256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()
    check(info.size == len(data) and info.chunks == 25, f"put info {info}")
    check(info.digest == digest, f"digest {info.digest} != {digest}")
    got = await obs.get("big.bin")
    check(got.data == data, f"get returned {len(got.data)} bytes")
    check(got.info.digest == digest, f"get info {got.info}")
    st = (await js.stream_info("OBJ_pyobj")).state
    check(st.messages == 26, f"25 chunks + 1 meta: {st}")
    w = await obs.watch()
    first = await w.updates(timeout=WAIT)
    check(first is not None and first.name == "big.bin", f"watch initial {first}")
    check(await w.updates(timeout=WAIT) is None, "watch caught-up marker")
    await obs.put("small.txt", b"hello")
    upd = await w.updates(timeout=WAIT)
    check(upd.name == "small.txt" and upd.size == 5, f"watch update {upd}")
    names = sorted(i.name for i in await obs.list())
    check(names == ["big.bin", "small.txt"], f"list {names}")
    await obs.delete("big.bin")
    try:
        await obs.get_info("big.bin")
    except ObjectNotFoundError:
        pass
    else:
        raise CheckFailed("info of a deleted object")
    gone = await obs.get_info("big.bin", show_deleted=True)
    check(gone.deleted and gone.size == 0, f"deleted info {gone}")
    upd = await w.updates(timeout=WAIT)
    check(upd.name == "big.bin" and upd.deleted, f"watch delete {upd}")
    st = (await js.stream_info("OBJ_pyobj")).state
    check(st.messages == 3, f"chunks purged; two metas and a chunk left: {st}")
    await w.stop()


CHECKS = [
    ("kv_bucket_config", kv_bucket_config),
    ("kv_revisions", kv_revisions),
    ("kv_markers_history_keys", kv_markers_history_keys),
    ("kv_watch", kv_watch),
    ("kv_ttl", kv_ttl),
    ("object_store", object_store),
]


if __name__ == "__main__":
    sys.exit(asyncio.run(run_checks(CHECKS)))
