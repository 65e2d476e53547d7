// json-shaper: the plugin's logic, plain JavaScript with no WIT in sight, so that `node --test`
// checks it on the build machine. app.js is the glue to the component's exports and imports.
//
// A configuration is a list of rules; the first rule whose subject pattern matches a message
// decides what happens to its JSON payload:
//
//   { "rules": [ { "subject": "orders.>",          NATS pattern (`*` one token, `>` the rest)
//                  "pick": ["id", "total"],        keep only these top-level fields (optional)
//                  "omit": ["card"],               then remove these (optional)
//                  "rename": { "total": "amount" }, then rename (optional)
//                  "set": { "source": "natrium" },  then add or overwrite (optional)
//                  "stamp": "received_at_ms",      then the receive time, ms since the epoch
//                  "account": "account",           then the publisher's account (optional)
//                  "invalid": "drop" } ] }         payload not a JSON object: "drop" or "pass"
//
// Messages no rule matches pass unchanged.

/** A configuration that cannot be used; the plugin then drops what its rules would cover. */
export class ConfigError extends Error {}

const ACTIONS = ["pick", "omit", "rename", "set", "stamp", "account", "invalid"];

/** Parses and checks the plugin's configuration (a JSON string). Throws ConfigError. */
export function loadConfig(text) {
  let cfg;
  try {
    cfg = JSON.parse(text || "{}");
  } catch (e) {
    throw new ConfigError(`configuration is not JSON: ${e.message}`);
  }
  if (cfg === null || typeof cfg !== "object" || Array.isArray(cfg)) {
    throw new ConfigError("configuration must be a JSON object");
  }
  const rules = cfg.rules ?? [];
  if (!Array.isArray(rules)) throw new ConfigError("rules must be a list");
  return rules.map((r, i) => checkRule(r, `rules[${i}]`));
}

function checkRule(r, at) {
  if (r === null || typeof r !== "object") throw new ConfigError(`${at}: must be an object`);
  for (const k of Object.keys(r)) {
    if (k !== "subject" && !ACTIONS.includes(k)) {
      throw new ConfigError(`${at}: unknown field "${k}"`);
    }
  }
  if (typeof r.subject !== "string" || r.subject === "") {
    throw new ConfigError(`${at}.subject: a subject pattern is required`);
  }
  const strings = (v, name) => {
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) {
      throw new ConfigError(`${at}.${name}: must be a list of field names`);
    }
    return v;
  };
  const object = (v, name) => {
    if (v === undefined) return undefined;
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      throw new ConfigError(`${at}.${name}: must be an object`);
    }
    return v;
  };
  const field = (v, name) => {
    if (v !== undefined && typeof v !== "string") {
      throw new ConfigError(`${at}.${name}: must be a field name`);
    }
    return v;
  };
  const invalid = r.invalid ?? "pass";
  if (invalid !== "pass" && invalid !== "drop") {
    throw new ConfigError(`${at}.invalid: "pass" or "drop", not ${JSON.stringify(invalid)}`);
  }
  const rename = object(r.rename, "rename");
  if (rename && Object.values(rename).some((v) => typeof v !== "string")) {
    throw new ConfigError(`${at}.rename: new names must be strings`);
  }
  return {
    tokens: r.subject.split("."),
    pick: strings(r.pick, "pick"),
    omit: strings(r.omit, "omit"),
    rename,
    set: object(r.set, "set"),
    stamp: field(r.stamp, "stamp"),
    account: field(r.account, "account"),
    invalid,
  };
}

/** True when `subject` matches the NATS pattern split into `tokens`. */
export function matches(tokens, subject) {
  const parts = subject.split(".");
  for (let i = 0; i < tokens.length; i++) {
    if (tokens[i] === ">") return parts.length > i;
    if (i >= parts.length) return false;
    if (tokens[i] !== "*" && tokens[i] !== parts[i]) return false;
  }
  return parts.length === tokens.length;
}

/**
 * What to do with one message: `{ pass: true }`, `{ drop: reason }` or `{ payload: string }`
 * (the new JSON text). `nowMs` is the receive time in milliseconds.
 */
export function shape(rules, account, subject, payloadText, nowMs) {
  const rule = rules.find((r) => matches(r.tokens, subject));
  if (!rule) return { pass: true };
  let doc;
  try {
    doc = JSON.parse(payloadText);
  } catch {
    doc = undefined;
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) {
    return rule.invalid === "drop"
      ? { drop: `json-shaper: payload on ${subject} is not a JSON object` }
      : { pass: true };
  }
  if (rule.pick) {
    const kept = {};
    for (const k of rule.pick) if (Object.hasOwn(doc, k)) kept[k] = doc[k];
    doc = kept;
  }
  for (const k of rule.omit ?? []) delete doc[k];
  for (const [from, to] of Object.entries(rule.rename ?? {})) {
    if (Object.hasOwn(doc, from)) {
      const v = doc[from];
      delete doc[from];
      doc[to] = v;
    }
  }
  Object.assign(doc, rule.set ?? {});
  if (rule.stamp) doc[rule.stamp] = nowMs;
  if (rule.account) doc[rule.account] = account;
  return { payload: JSON.stringify(doc) };
}
