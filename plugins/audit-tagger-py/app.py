"""audit-tagger: a Natrium transformer written in Python (componentize-py).

Stamps every message with the account it was published in, the time the broker received it and
an audit id, adds static tags from the configuration, optionally drops messages that are too
large or lack required headers, and optionally writes one audit line per message to the broker's
log. The logic lives in tagger.py; this module is the glue to the generated WIT bindings.
"""

from wit_world import exports
from wit_world.exports.transformation import Outcome_Drop, Outcome_Replace
from wit_world.imports import host
from wit_world.imports.types import Header, Message

import tagger

_state = None


def _tagger():
    """The configured Tagger, built on first use (config is fixed for an instance's life)."""
    global _state
    if _state is None:
        try:
            _state = tagger.Tagger(tagger.load_config(host.config()))
        except tagger.ConfigError as e:
            _state = e
    return _state


class Transformation(exports.Transformation):
    def transform(self, account: str, msg: Message):
        t = _tagger()
        if isinstance(t, Exception):
            return Outcome_Drop(f"audit-tagger misconfigured: {t}")
        headers = [(h.name, h.value) for h in msg.headers]
        result = t.decide(account, msg.subject, headers, len(msg.payload), host.now())
        if result[0] == "drop":
            return Outcome_Drop(result[1])
        _, new_headers, fields = result
        if t.cfg["log"]:
            host.log(host.Level.INFO, "audit", fields)
        return Outcome_Replace(
            Message(
                subject=msg.subject,
                reply=msg.reply,
                headers=[Header(name=n, value=v) for n, v in new_headers],
                payload=msg.payload,
            )
        )

    def transform_batch(self, account: str, msgs):
        return [self.transform(account, m) for m in msgs]
