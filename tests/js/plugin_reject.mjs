// A publish a plugin rejects, seen from nats.js v3 (server at argv[2], running the size-gate
// transformer on data.> with on_failure: reject and max_bytes 8): the client stays connected,
// its status stream reports the reason, a request and a JetStream publish fail fast with it,
// and a small message still goes through. Exits non-zero on the first failed check.
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { check, fail } from "./check.mjs";

const servers = process.argv[2];
const enc = new TextEncoder();
const big = enc.encode("more than eight bytes");

const nc = await connect({ servers, timeout: 5000 });
const statuses = [];
(async () => {
  for await (const s of nc.status()) statuses.push(`${s.type} ${s.error ?? s.data ?? ""}`);
})();

// A plain publish: the reason arrives as a non-fatal error.
nc.publish("data.plain", big);
await nc.flush();
await new Promise((r) => setTimeout(r, 200));
check(!nc.isClosed(), "the connection survived a rejected publish");
check(
  statuses.some((s) => s.includes("Message Rejected")),
  `the status stream carries the reason: ${JSON.stringify(statuses)}`,
);

// A request fails fast, with the reason.
let started = Date.now();
try {
  await nc.request("data.req", big, { timeout: 3000 });
  fail("a rejected request got an answer");
} catch (e) {
  check(Date.now() - started < 2000, `the rejected request failed fast (${Date.now() - started} ms)`);
  check(`${e}${e.cause ?? ""}`.includes("Message Rejected") || `${e}`.includes("403"), `request error: ${e}`);
}

// A JetStream publish fails fast with the reason; a small one is stored.
const jsm = await jetstreamManager(nc);
await jsm.streams.add({ name: "DATA", subjects: ["data.s"] });
const js = jetstream(nc);
started = Date.now();
try {
  await js.publish("data.s", big);
  fail("a rejected JetStream publish was acknowledged");
} catch (e) {
  check(Date.now() - started < 2000, `the rejected js.publish failed fast (${Date.now() - started} ms)`);
  check(`${e}${e.cause ?? ""}`.includes("Message Rejected") || `${e}`.includes("size"), `js.publish error: ${e}`);
}
const ack = await js.publish("data.s", enc.encode("ok"));
check(ack.seq === 1, `the small message is stored: ${JSON.stringify(ack)}`);
check(!nc.isClosed(), "still connected at the end");
await nc.close();
console.log("OK");
