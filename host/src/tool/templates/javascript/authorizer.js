// {{name}}: a natrium authorizer written in JavaScript (componentize-js).
//
// Admits a client whose CONNECT token is one of the configured tokens, into that token's
// account, with publish and subscribe rights on the account's own subjects; refuses everyone
// else, saying why. Configuration: {"tokens": {"s3cret": "ACME"}}.
//
// componentize-js runs this module's top level at build time (a snapshot), so the host is
// called only from inside the exports: the configuration is read on first use.

import { config, log } from "natrium:plugin/host@0.1.0";

let tokens; // token -> account, fixed for an instance's life

function configured() {
  if (tokens === undefined) {
    const cfg = JSON.parse(config());
    tokens = (cfg && typeof cfg.tokens === "object" && cfg.tokens) || {};
  }
  return tokens;
}

export const authorization = {
  authorize(request) {
    if (request.authToken === undefined) return { tag: "deny", val: "no token" };
    const account = configured()[request.authToken];
    if (typeof account !== "string") return { tag: "deny", val: "unknown token" };
    const own = `${account.toLowerCase()}.>`;
    log("info", "admitted", [["account", account]]);
    return {
      tag: "allow",
      val: {
        account,
        user: request.user ?? "token",
        publish: { allow: [own], deny: [] },
        subscribe: { allow: [own, "_INBOX.>"], deny: [] },
        allowResponses: { maxMsgs: 1, expiresMs: 0n },
        limits: { maxSubscriptions: undefined, maxPayload: undefined },
        expiresAt: undefined,
      },
    };
  },
};
