"""{{name}}: a natrium authorizer written in Python (componentize-py).

Admits a client whose CONNECT token is one of the configured tokens, into that token's account,
with publish and subscribe rights on the account's own subjects; refuses everyone else, saying
why. Configuration: {"tokens": {"s3cret": "ACME"}}.
"""

import json

from wit_world import exports
from wit_world.exports.authorization import (
    Allowed,
    ConnectRequest,
    Decision_Allow,
    Decision_Deny,
    Limits,
    Permission,
    ResponsePermission,
)
from wit_world.imports import host

# The configuration, read on first use (it is fixed for an instance's life).
_tokens = None


def tokens():
    global _tokens
    if _tokens is None:
        cfg = json.loads(host.config())
        _tokens = cfg.get("tokens", {}) if isinstance(cfg, dict) else {}
    return _tokens


class Authorization(exports.Authorization):
    def authorize(self, request: ConnectRequest):
        if request.auth_token is None:
            return Decision_Deny("no token")
        account = tokens().get(request.auth_token)
        if account is None:
            return Decision_Deny("unknown token")
        own = account.lower() + ".>"
        host.log(host.Level.INFO, "admitted", [("account", account)])
        return Decision_Allow(
            Allowed(
                account=account,
                user=request.user or "token",
                publish=Permission(allow=[own], deny=[]),
                subscribe=Permission(allow=[own, "_INBOX.>"], deny=[]),
                allow_responses=ResponsePermission(max_msgs=1, expires_ms=0),
                limits=Limits(max_subscriptions=None, max_payload=None),
                expires_at=None,
            )
        )
