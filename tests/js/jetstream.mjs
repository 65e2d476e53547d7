// JetStream through the official JavaScript client (nats.js v3), against the server at
// argv[2] (host:port). Exits non-zero with a message on the first failed check.
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, JetStreamApiError } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { check, fail } from "./check.mjs";

const servers = process.argv[2];

const nc = await connect({ servers, timeout: 5000 });
try {
  const jsm = await jetstreamManager(nc);
  const si = await jsm.streams.add({ name: "JS", subjects: ["js.>"] });
  check(si.config.name === "JS" && si.state.messages === 0, `add: ${JSON.stringify(si)}`);

  const js = jetstream(nc);
  const enc = new TextEncoder();
  const a1 = await js.publish("js.a", enc.encode("one"), { msgID: "m1" });
  const a2 = await js.publish("js.a", enc.encode("one again"), { msgID: "m1" });
  check(a1.seq === 1 && !a1.duplicate, `first ack ${JSON.stringify(a1)}`);
  check(a2.seq === 1 && a2.duplicate, `duplicate ack ${JSON.stringify(a2)}`);
  await js.publish("js.b", enc.encode("two"), { expect: { lastSequence: 1 } });
  try {
    await js.publish("js.b", enc.encode("x"), { expect: { lastSequence: 1 } });
    fail("a wrong expected last sequence was accepted");
  } catch (e) {
    check(e instanceof JetStreamApiError && e.code === 10071, `wrong last sequence: ${e}`);
  }

  const m = await jsm.streams.getMessage("JS", { last_by_subj: "js.b" });
  check(m.seq === 2 && m.string() === "two", `get last by subject: ${m.seq}`);
  const info = await jsm.streams.info("JS");
  check(info.state.messages === 2 && info.state.last_seq === 2, `info ${JSON.stringify(info.state)}`);
  const names = [];
  for await (const n of jsm.streams.names()) names.push(n);
  check(names.includes("JS"), `names ${names}`);
  check(await jsm.streams.deleteMessage("JS", 1), "delete message 1");
  const purged = await jsm.streams.purge("JS");
  check(purged.success && purged.purged === 1, `purge ${JSON.stringify(purged)}`);

  // Key-value get/put on a bucket (get uses direct get); watch needs consumers.
  const kvm = new Kvm(nc);
  const kv = await kvm.create("cfg", { history: 3 });
  const r1 = await kv.put("color", enc.encode("red"));
  const r2 = await kv.put("color", enc.encode("blue"));
  const e = await kv.get("color");
  check(e && e.string() === "blue" && e.revision === r2 && r2 > r1, `kv get ${e && e.string()}`);
  try {
    await kv.create("color", enc.encode("green"));
    fail("kv create on an existing key succeeded");
  } catch (err) {
    check(String(err).includes("wrong last sequence"), `kv create: ${err}`);
  }
  await kv.delete("color");
  const gone = await kv.get("color");
  check(gone && gone.operation === "DEL", `kv after delete: ${gone && gone.operation}`);

  check(await jsm.streams.delete("JS"), "delete stream");
  console.log("OK");
} finally {
  await nc.close();
}
