"""{{name}}: a natrium mapper written in Python (componentize-py).

Moves subjects from an old prefix to a new one (legacy.orders.1 -> v2.orders.1), leaving every
other subject as it is. Deterministic: the broker caches the result per (account, subject).
"""

from typing import Optional

from wit_world import exports


class Mapping(exports.Mapping):
    def deterministic(self) -> bool:
        return True

    def map(self, account: str, subject: str) -> Optional[str]:
        if subject.startswith("legacy."):
            return "v2." + subject[len("legacy.") :]
        return None
