"""{{name}}: a natrium batch-transformer written in Python (componentize-py).

Drops messages whose payload is bigger than max_bytes (default 1024), reading only payload
lengths: everything else passes without being copied into the plugin.
Configuration: {"max_bytes": 1024}.
"""

import json

from wit_world import exports
from wit_world.exports.batch_transformation import Action_Drop, Decision
from wit_world.imports import host, pending

_max = None


def max_bytes() -> int:
    global _max
    if _max is None:
        cfg = json.loads(host.config())
        _max = int(cfg.get("max_bytes", 1024)) if isinstance(cfg, dict) else 1024
    return _max


class BatchTransformation(exports.BatchTransformation):
    def transform_pending(self, account: str, count: int):
        limit = max_bytes()
        decisions = []
        for i in range(count):
            n = pending.payload_len(i)
            if n > limit:
                reason = f"payload of {n} bytes is over the limit of {limit}"
                decisions.append(Decision(index=i, action=Action_Drop(reason)))
        return decisions
