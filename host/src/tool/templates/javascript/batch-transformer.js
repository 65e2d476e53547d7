// {{name}}: a natrium batch-transformer written in JavaScript (componentize-js).
//
// Drops messages whose payload is bigger than max_bytes (default 1024), reading only payload
// lengths: everything else passes without being copied into the plugin.
// Configuration: {"max_bytes": 1024}.

import { config } from "natrium:plugin/host@0.1.0";
import { payloadLen } from "natrium:plugin/pending@0.1.0";

let max; // fixed for an instance's life; read on first use (not at build time)

function limit() {
  if (max === undefined) {
    const cfg = JSON.parse(config());
    max = Number.isInteger(cfg?.max_bytes) ? cfg.max_bytes : 1024;
  }
  return max;
}

export const batchTransformation = {
  transformPending(_account, count) {
    const decisions = [];
    for (let i = 0; i < count; i++) {
      const n = payloadLen(i);
      if (n > limit()) {
        decisions.push({
          index: i,
          action: { tag: "drop", val: `payload of ${n} bytes is over the limit of ${limit()}` },
        });
      }
    }
    return decisions;
  },
};
