// The object store through the official JavaScript client (nats.js v3, @nats-io/obj), against
// the server at argv[2] (host:port): an object larger than the server's max payload (chunked),
// read back whole with its digest checked by the client; info, list, a link, a watcher, and
// delete. Exits non-zero with a message on the first failed check.
import { connect } from "@nats-io/transport-node";
import { Objm } from "@nats-io/obj";
import { check, fail } from "./check.mjs";

const servers = process.argv[2];
const enc = new TextEncoder();
const dec = new TextDecoder();

const nc = await connect({ servers, timeout: 5000 });
try {
  const objm = new Objm(nc);
  const os = await objm.create("jsobj");
  const watch = await os.watch({ includeHistory: false });
  const seen = (async () => {
    for await (const e of watch) if (e && e.name === "big") return e;
  })();

  // Bigger than max_payload (1 MiB): the client splits it into chunks.
  const size = 3 * 1024 * 1024 + 123;
  const data = new Uint8Array(size);
  for (let i = 0; i < size; i++) data[i] = (i * 31 + 7) & 0xff;
  const info = await os.putBlob({ name: "big", description: "three MiB and some" }, data);
  check(info.size === size && info.chunks > 1, `put: ${JSON.stringify(info)}`);
  const back = await os.getBlob("big");
  check(back && back.length === size && back.every((b, i) => b === data[i]), "get returns the bytes");
  const w = await Promise.race([seen, new Promise((r) => setTimeout(() => r(null), 5000))]);
  check(w && w.size === size, `watch saw the put: ${w && JSON.stringify(w)}`);

  await os.putBlob({ name: "small" }, enc.encode("hello"));
  const link = await os.link("alias", await os.info("small"));
  check(link.options && link.options.link, `link: ${JSON.stringify(link)}`);
  check(dec.decode(await os.getBlob("alias")) === "hello", "a link reads its target");
  const names = (await os.list()).map((o) => o.name).sort();
  check(names.join() === "alias,big,small", `list: ${names}`);

  await os.delete("big");
  check((await os.get("big")) === null, "deleted");
  const left = (await os.list()).map((o) => o.name).sort();
  check(left.join() === "alias,small", `after delete: ${left}`);
  watch.stop();
  console.log("OK");
} catch (e) {
  fail(`${e && e.stack ? e.stack : e}`);
} finally {
  await nc.close();
}
