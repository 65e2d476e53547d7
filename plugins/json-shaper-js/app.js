// json-shaper: a Natrium transformer written in JavaScript (componentize-js).
//
// Reshapes JSON payloads by subject: keeps or removes fields, renames them, adds constants, the
// receive time and the publisher's account (rules in shaper.js). This module is the glue: the
// world's export `transformation` and its import `natrium:plugin/host`.
//
// componentize-js runs this module's top level at build time (a Wizer snapshot), so nothing
// here may call the host before the first message: the configuration is read on first use.

import { config, log, now } from "natrium:plugin/host@0.1.0";
import { ConfigError, loadConfig, shape } from "./shaper.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });
const encode = new TextEncoder();

// The configured rules, or the ConfigError that made them unusable (fixed for an instance).
let rules;

function configured() {
  if (rules === undefined) {
    try {
      rules = loadConfig(config());
    } catch (e) {
      rules = e instanceof ConfigError ? e : new ConfigError(String(e));
      log("error", `json-shaper misconfigured: ${rules.message}`, []);
    }
  }
  return rules;
}

function transform(account, msg) {
  const r = configured();
  if (r instanceof ConfigError) return { tag: "drop", val: `json-shaper misconfigured: ${r.message}` };
  let text;
  try {
    text = utf8.decode(msg.payload);
  } catch {
    text = "";
  }
  const nowMs = Number(now() / 1_000_000n);
  const out = shape(r, account, msg.subject, text, nowMs);
  if (out.pass) return { tag: "pass" };
  if (out.drop !== undefined) return { tag: "drop", val: out.drop };
  return {
    tag: "replace",
    val: {
      subject: msg.subject,
      reply: msg.reply,
      headers: msg.headers,
      payload: encode.encode(out.payload),
    },
  };
}

export const transformation = {
  transform,
  transformBatch(account, msgs) {
    return msgs.map((m) => transform(account, m));
  },
};
