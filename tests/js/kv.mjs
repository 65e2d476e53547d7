// Key-value buckets through the official JavaScript client (nats.js v3), the parts that need
// consumers: history, keys and watchers (which start with the current values, then follow
// updates), plus revisions, create/update errors, delete/purge markers and bucket TTL. Against
// the server at argv[2] (host:port); exits non-zero with a message on the first failed check.
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { check, fail } from "./check.mjs";

const servers = process.argv[2];
const enc = new TextEncoder();
const dec = new TextDecoder();

// Reads the next `n` entries of a watcher or history (one async iterator per queue, since a
// nats.js QueuedIterator can be iterated only once), failing after `ms`.
const iterators = new WeakMap();
async function take(queue, n, ms = 5000) {
  if (!iterators.has(queue)) iterators.set(queue, queue[Symbol.asyncIterator]());
  const it = iterators.get(queue);
  const out = [];
  const timer = setTimeout(() => fail(`timed out after ${out.map(brief)}`), ms);
  while (out.length < n) {
    const { value, done } = await it.next();
    if (done) fail(`iterator ended after ${out.map(brief)}`);
    out.push(value);
  }
  clearTimeout(timer);
  return out;
}
const brief = (e) => `${e.key}@${e.revision}:${e.operation}:${dec.decode(e.value)}`;

const nc = await connect({ servers, timeout: 5000 });
try {
  const jsm = await jetstreamManager(nc);
  const kvm = new Kvm(nc);
  const kv = await kvm.create("jskv", { history: 3 });
  const cfg = (await jsm.streams.info("KV_jskv")).config;
  // nats.js sets allow_direct (unlike nats-py) and leaves deny_delete off (unlike async-nats).
  check(
    cfg.subjects[0] === "$KV.jskv.>" && cfg.max_msgs_per_subject === 3 && cfg.allow_direct &&
      cfg.allow_rollup_hdrs && !cfg.deny_delete && cfg.discard === "new",
    `bucket stream config ${JSON.stringify(cfg)}`,
  );

  // Revisions, and create/update guarded by the expected revision.
  for (const v of ["1", "2", "3", "4"]) await kv.put("a", enc.encode(v));
  const old = await kv.get("a", { revision: 2 });
  check(old && old.string() === "2" && old.revision === 2, `get revision 2: ${old && brief(old)}`);
  try {
    await kv.create("a", enc.encode("x"));
    fail("create of an existing key succeeded");
  } catch (err) {
    check(String(err).includes("wrong last sequence: 4"), `create: ${err}`);
  }
  try {
    await kv.update("a", enc.encode("x"), 3);
    fail("update at a stale revision succeeded");
  } catch (err) {
    check(String(err).includes("wrong last sequence: 4"), `update: ${err}`);
  }

  // History keeps 3; markers are entries; keys skip deleted keys.
  await kv.put("b", enc.encode("x"));
  await kv.delete("b");
  const hist = (await take(await kv.history({ key: "a" }), 3)).map(brief);
  check(JSON.stringify(hist) === JSON.stringify(["a@2:PUT:2", "a@3:PUT:3", "a@4:PUT:4"]), `history a ${hist}`);
  const hb = (await take(await kv.history({ key: "b" }), 2)).map(brief);
  check(JSON.stringify(hb) === JSON.stringify(["b@5:PUT:x", "b@6:DEL:"]), `history b ${hb}`);
  const keys = [];
  for await (const k of await kv.keys()) keys.push(k);
  check(JSON.stringify(keys) === JSON.stringify(["a"]), `keys ${keys}`);
  await kv.purge("a");
  const ha = (await take(await kv.history({ key: "a" }), 1)).map(brief);
  check(JSON.stringify(ha) === JSON.stringify(["a@7:PURGE:"]), `history after purge ${ha}`);

  // Watchers: current values first, then changes (isUpdate). nats.js 3.4 counts the initial
  // entries against the consumer's num_pending at creation and already flags the last of
  // them as an update, so isUpdate is only checked on the changes.
  await kv.put("x.1", enc.encode("p"));
  await kv.put("x.2", enc.encode("q"));
  const w = await kv.watch({ key: "x.*" });
  const initial = (await take(w, 2)).map(brief);
  check(
    JSON.stringify(initial) === JSON.stringify(["x.1@8:PUT:p", "x.2@9:PUT:q"]),
    `watch initial ${initial}`,
  );
  const all = await kv.watch();
  const allInitial = (await take(all, 4)).map(brief);
  check(
    JSON.stringify(allInitial) ===
      JSON.stringify(["b@6:DEL:", "a@7:PURGE:", "x.1@8:PUT:p", "x.2@9:PUT:q"]),
    `watch all initial ${allInitial}`,
  );
  const updatesOnly = await kv.watch({ key: "x.*", include: "updates" });
  await kv.put("x.1", enc.encode("r"));
  await kv.put("y", enc.encode("s"));
  await kv.delete("x.2");
  const upd = await take(w, 2);
  check(
    JSON.stringify(upd.map(brief)) === JSON.stringify(["x.1@10:PUT:r", "x.2@12:DEL:"]) &&
      upd.every((e) => e.isUpdate),
    `watch updates ${upd.map(brief)}`,
  );
  const allUpd = (await take(all, 3)).map(brief);
  check(
    JSON.stringify(allUpd) === JSON.stringify(["x.1@10:PUT:r", "y@11:PUT:s", "x.2@12:DEL:"]),
    `watch all updates ${allUpd}`,
  );
  const onlyNew = (await take(updatesOnly, 2)).map(brief);
  check(
    JSON.stringify(onlyNew) === JSON.stringify(["x.1@10:PUT:r", "x.2@12:DEL:"]),
    `updates-only watch ${onlyNew}`,
  );
  w.stop();
  all.stop();
  updatesOnly.stop();

  // A bucket TTL expires values.
  const ttl = await kvm.create("jsttl", { history: 1, ttl: 1000 });
  await ttl.put("k", enc.encode("v"));
  check((await ttl.get("k"))?.string() === "v", "get before expiry");
  let expired = false;
  for (let i = 0; i < 40 && !expired; i++) {
    await new Promise((r) => setTimeout(r, 200));
    expired = (await ttl.get("k")) === null;
  }
  check(expired, "k did not expire after its 1 s ttl");
  console.log("OK");
} finally {
  await nc.close();
}
