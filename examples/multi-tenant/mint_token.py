#!/usr/bin/env python3
"""Mint an HS256 JWT for the multi-tenant demo, as a tenant's identity provider would.

Standard library only (hmac, hashlib, base64, json). The defaults match natrium.conf next to
this file:

    python3 examples/multi-tenant/mint_token.py --tenant acme --user alice
    python3 examples/multi-tenant/mint_token.py --tenant globex --user gus --ttl 600

Prints the token; clients send it as the CONNECT `auth_token` (nats-py: `token=...`).
"""

import argparse
import base64
import hashlib
import hmac
import json
import sys
import time
from typing import Optional

# Must equal plugins.tenants.config.hs256_secret / issuer / audience in natrium.conf.
DEMO_SECRET = "demo-only-shared-secret-change-me"
DEMO_ISSUER = "https://idp.example.com/"
DEMO_AUDIENCE = "natrium-demo"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint(
    tenant: str,
    user: str,
    secret: str = DEMO_SECRET,
    ttl: int = 3600,
    issuer: str = DEMO_ISSUER,
    audience: str = DEMO_AUDIENCE,
    now: Optional[int] = None,
) -> str:
    """An HS256 JWT with claims sub, tenant, iss, aud, iat, nbf and exp (now + ttl)."""
    now = int(time.time()) if now is None else now
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {
        "sub": user,
        "tenant": tenant,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "nbf": now - 5,
        "exp": now + ttl,
    }
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    sig = hmac.new(secret.encode(), signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(sig)}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tenant", required=True, help="tenant claim, e.g. acme or globex")
    ap.add_argument("--user", default="demo-user", help="sub claim (the user name)")
    ap.add_argument("--ttl", type=int, default=3600, help="seconds until exp (negative: expired)")
    ap.add_argument("--secret", default=DEMO_SECRET, help="HS256 shared secret")
    ap.add_argument("--issuer", default=DEMO_ISSUER)
    ap.add_argument("--audience", default=DEMO_AUDIENCE)
    a = ap.parse_args()
    print(mint(a.tenant, a.user, a.secret, a.ttl, a.issuer, a.audience))
    return 0


if __name__ == "__main__":
    sys.exit(main())
