#!/usr/bin/env python3
"""KV puts while a watch-all watcher follows the bucket, through nats-py (a script, not a test).

Fills bucket `b` (history 1) with KEYS keys, starts `kv.watchall()`, waits until the watcher
has seen every initial value, then times PUTS sequential `kv.put`s (keys cycled) until the
watcher has seen them all. Prints puts/s. Bounded: 60 s for the watcher to catch up.

    bench/kv_watch.py PORT [KEYS=20000] [PUTS=2000]

Start the server first with JetStream on a fresh store (`natrium -js -sd DIR -p PORT`, or
`nats-server -js -sd DIR -p PORT`); needs `pip install nats-py` (scripts/test installs it).
"""
import asyncio, sys, time
import nats
async def main(port, keys, puts):
    nc = await nats.connect(f"nats://127.0.0.1:{port}")
    js = nc.jetstream()
    kv = await js.create_key_value(bucket="b", history=1)
    # fill keys with async publishes
    futs = []
    for i in range(keys):
        futs.append(js.publish(f"$KV.b.k{i}", b"v"))
        if len(futs) >= 500:
            await asyncio.gather(*futs); futs = []
    await asyncio.gather(*futs)
    w = await kv.watchall()
    got = 0
    async def drain():
        nonlocal got
        async for e in w:
            if e is None: continue
            got += 1
    t = asyncio.create_task(drain())
    # wait for initial values
    deadline = time.time()+60
    while got < keys and time.time() < deadline: await asyncio.sleep(0.05)
    start = time.time()
    base = got
    for i in range(puts):
        await kv.put(f"k{i % keys}", b"new")
    while got < base + puts and time.time() < deadline: await asyncio.sleep(0.01)
    el = time.time() - start
    print(f"keys={keys} puts={puts} watched={got-base} {puts/el:.0f} puts/s (with watcher)")
    t.cancel()
    await nc.close()
if __name__ == "__main__":
    args = sys.argv[1:] + ["20000", "2000"][len(sys.argv) - 2 :]
    asyncio.run(main(int(args[0]), int(args[1]), int(args[2])))
