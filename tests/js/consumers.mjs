// Consumers through the official JavaScript client (nats.js v3, @nats-io/jetstream), against
// the server at argv[2] (host:port): a durable pull consumer's fetch, next and consume with
// ack, nak (redelivered) and term; an ordered consumer; a durable push consumer. Exits
// non-zero with a message on the first failed check.
import { connect } from "@nats-io/transport-node";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { check, fail } from "./check.mjs";

const servers = process.argv[2];
const enc = new TextEncoder();
const N = 20;

// Fails after `ms` unless `p` settles first.
const within = (ms, what, p) =>
  Promise.race([p, new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms))]);

const nc = await connect({ servers, timeout: 5000 });
try {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: "JC", subjects: ["jc.>"] });
  const js = jetstream(nc);
  for (let i = 1; i <= N; i++) await js.publish(`jc.${i % 2}`, enc.encode(`m${i}`));

  // Durable pull consumer: fetch a batch, in order, each acked.
  await jsm.consumers.add("JC", { durable_name: "pull", ack_policy: AckPolicy.Explicit });
  const c = await js.consumers.get("JC", "pull");
  const got = [];
  for await (const m of await c.fetch({ max_messages: 5, expires: 2000 })) {
    got.push(m.seq);
    m.ack();
  }
  check(got.join() === "1,2,3,4,5", `fetch: ${got}`);

  // next: a nak comes straight back, marked redelivered; term ends it for good.
  const six = await within(5000, "next", c.next({ expires: 2000 }));
  check(six && six.seq === 6 && !six.redelivered, `next: ${six && six.seq}`);
  six.nak();
  const again = await within(5000, "redelivery", c.next({ expires: 2000 }));
  check(
    again && again.seq === 6 && again.redelivered && again.info.deliveryCount === 2,
    `after nak: ${again && again.seq} redelivered=${again && again.redelivered}`,
  );
  again.term();

  // consume: the rest, acked with a confirmation (double ack) each.
  const rest = [];
  const messages = await c.consume({ max_messages: 4 });
  for await (const m of messages) {
    rest.push(m.seq);
    await m.ackAck();
    if (m.seq === N) break;
  }
  check(rest.join() === Array.from({ length: N - 6 }, (_, i) => i + 7).join(), `consume: ${rest}`);
  const info = await c.info();
  check(
    info.num_pending === 0 && info.num_ack_pending === 0 && info.ack_floor.stream_seq === N,
    `pull consumer info ${JSON.stringify(info)}`,
  );

  // Ordered consumer (nats.js creates and recreates the ephemeral consumers itself); nats.js
  // sends filter_subjects only to servers of 2.10 or later.
  const filtered = !nc.info.version.startsWith("2.9.");
  const oc = await js.consumers.get("JC", filtered ? { filter_subjects: ["jc.1"] } : {});
  const want = filtered
    ? Array.from({ length: N / 2 }, (_, i) => `m${2 * i + 1}`)
    : Array.from({ length: N }, (_, i) => `m${i + 1}`);
  const ordered = [];
  for await (const m of await oc.fetch({ max_messages: want.length, expires: 2000 })) {
    ordered.push(m.string());
  }
  check(ordered.join() === want.join(), `ordered consumer: ${ordered}`);

  // Durable push consumer.
  const inbox = nc.options.inboxPrefix ? `${nc.options.inboxPrefix}.push` : "_INBOX.jcpush";
  await jsm.consumers.add("JC", {
    durable_name: "push",
    deliver_subject: inbox,
    ack_policy: AckPolicy.Explicit,
  });
  const pc = await js.consumers.getPushConsumer("JC", "push");
  const pushed = [];
  const pm = await pc.consume();
  for await (const m of pm) {
    pushed.push(m.seq);
    m.ack();
    if (pushed.length === N) break;
  }
  check(pushed.join() === Array.from({ length: N }, (_, i) => i + 1).join(), `push: ${pushed}`);
  console.log("OK");
} catch (e) {
  fail(`${e && e.stack ? e.stack : e}`);
} finally {
  await nc.close();
}
