// Runs the built component ({{name}}.wasm: ./build.sh first) in natrium's sandbox with
// `natrium plugin run` on each sample of samples.json, and checks the decision.
// `node --test`; the natrium binary is $NATRIUM, else `natrium` on PATH.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";

const here = new URL(".", import.meta.url).pathname;
const { world, config, samples } = JSON.parse(readFileSync(`${here}samples.json`, "utf8"));
const natrium = process.env.NATRIUM || "natrium";

// True when every member of `want` is in `got` (objects: recursively; anything else: equal).
function contains(got, want) {
  if (want !== null && typeof want === "object" && !Array.isArray(want)) {
    return got !== null && typeof got === "object" && Object.entries(want).every(([k, v]) => contains(got[k], v));
  }
  return JSON.stringify(got) === JSON.stringify(want);
}

for (const { args, expect } of samples) {
  test(`plugin run ${args.join(" ")}`, () => {
    const out = execFileSync(natrium, ["plugin", "run", `${here}{{name}}.wasm`, "--world", world,
      "--config", JSON.stringify(config), "--deadline", "1s", "--json", ...args], { encoding: "utf8" });
    const got = JSON.parse(out);
    assert.ok(contains(got, expect), `got ${out}\nwant ${JSON.stringify(expect)}`);
  });
}
