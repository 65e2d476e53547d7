// The plugin's logic on the build machine: `node --test` (in plugins/json-shaper-js).
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, loadConfig, matches, shape } from "./shaper.js";

const rules = loadConfig(
  JSON.stringify({
    rules: [
      {
        subject: "orders.>",
        pick: ["id", "total", "card"],
        omit: ["card"],
        rename: { total: "amount" },
        set: { source: "natrium" },
        stamp: "received_at_ms",
        account: "account",
        invalid: "drop",
      },
      { subject: "metrics.*", omit: ["debug"] },
    ],
  }),
);

test("subject patterns follow NATS wildcards", () => {
  const t = (p) => p.split(".");
  assert.ok(matches(t("a.>"), "a.b"));
  assert.ok(matches(t("a.>"), "a.b.c"));
  assert.ok(!matches(t("a.>"), "a"));
  assert.ok(matches(t("a.*"), "a.b"));
  assert.ok(!matches(t("a.*"), "a.b.c"));
  assert.ok(matches(t("a.b"), "a.b"));
  assert.ok(!matches(t("a.b"), "a.b.c"));
  assert.ok(!matches(t("a.b.c"), "a.b"));
});

test("a matching rule picks, omits, renames, sets and stamps", () => {
  const out = shape(rules, "SHOP", "orders.new", '{"id":7,"total":9.5,"card":"4111","x":1}', 1234);
  assert.deepEqual(JSON.parse(out.payload), {
    id: 7,
    amount: 9.5,
    source: "natrium",
    received_at_ms: 1234,
    account: "SHOP",
  });
});

test("the first matching rule wins; no rule: pass", () => {
  const out = shape(rules, "A", "metrics.cpu", '{"v":1,"debug":"x"}', 0);
  assert.deepEqual(JSON.parse(out.payload), { v: 1 });
  assert.deepEqual(shape(rules, "A", "other", "not json", 0), { pass: true });
});

test("a payload that is not a JSON object is dropped or passed, as the rule says", () => {
  assert.match(shape(rules, "A", "orders.x", "[1,2]", 0).drop, /not a JSON object/);
  assert.match(shape(rules, "A", "orders.x", "oops", 0).drop, /not a JSON object/);
  assert.deepEqual(shape(rules, "A", "metrics.x", "oops", 0), { pass: true });
});

test("bad configurations say what is wrong", () => {
  const bad = (cfg, re) => assert.throws(() => loadConfig(cfg), (e) => e instanceof ConfigError && re.test(e.message));
  bad("{", /not JSON/);
  bad("[]", /JSON object/);
  bad('{"rules":[{}]}', /rules\[0\]\.subject/);
  bad('{"rules":[{"subject":"a","pick":"id"}]}', /pick: must be a list/);
  bad('{"rules":[{"subject":"a","invalid":"maybe"}]}', /"pass" or "drop"/);
  bad('{"rules":[{"subject":"a","drop":true}]}', /unknown field "drop"/);
  assert.deepEqual(loadConfig("{}"), []);
});
