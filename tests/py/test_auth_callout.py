"""Auth callout with Python on both sides: a callout service written with nats-py and the
`nkeys` package (the way a nats-server 2.10 service is written in Python), and nats-py clients
admitted or refused by it.

Usage: test_auth_callout.py URL ISSUER_SEED
The server must be configured with `auth_callout { issuer: <public key of ISSUER_SEED>,
auth_users: [auth], account: AUTH }`, user auth/pwd in AUTH and an account B.
Prints "ok   <check>" per check; exits non-zero on the first failure.
"""

import asyncio
import base64
import json
import sys
import time

import nacl.signing
import nats
import nkeys
from nats.errors import Error as NatsError


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(kp, claims: dict) -> str:
    claims = dict(claims, iss=kp.public_key.decode(), iat=int(time.time()), jti=b64(kp.public_key))
    head = b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    body = b64(json.dumps(claims).encode())
    signed = f"{head}.{body}"
    return f"{signed}.{b64(kp.sign(signed.encode()))}"


def read(token: str) -> dict:
    """The claims of a JWT, after checking the signature against its own iss."""
    head, body, sig = token.split(".")
    claims = json.loads(unb64(body))
    # A public NKey is base32 of: prefix byte, 32-byte ed25519 key, CRC16.
    iss = claims["iss"]
    raw = base64.b32decode(iss + "=" * (-len(iss) % 8))
    nacl.signing.VerifyKey(raw[1:-2]).verify(f"{head}.{body}".encode(), unb64(sig))
    return claims


async def serve(url: str, issuer) -> nats.NATS:
    nc = await nats.connect(url, user="auth", password="pwd")

    async def on_request(msg):
        req = read(msg.data.decode())["nats"]
        connect = req["connect_opts"]
        answer = {"type": "authorization_response", "version": 2}
        if connect.get("user") == "py" and connect.get("pass") == "thon":
            user = {
                "sub": req["user_nkey"], "aud": "B", "name": "py",
                "nats": {"pub": {"allow": ["py.>", "_INBOX.>"]}, "sub": {},
                         "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2},
            }
            answer["jwt"] = sign(issuer, user)
        else:
            answer["error"] = "unknown python user"
        response = {"sub": req["user_nkey"], "aud": req["server_id"]["id"], "nats": answer}
        await msg.respond(sign(issuer, response).encode())

    await nc.subscribe("$SYS.REQ.USER.AUTH", cb=on_request)
    await nc.flush()
    return nc


async def main(url: str, seed: str) -> None:
    issuer = nkeys.from_seed(seed.encode())
    service = await serve(url, issuer)

    nc = await nats.connect(url, user="py", password="thon", allow_reconnect=False)
    sub = await nc.subscribe("py.>")
    await nc.publish("py.hello", b"hi")
    msg = await sub.next_msg(timeout=5)
    assert msg.data == b"hi", msg.data
    await nc.close()
    print("ok   admitted")

    errors = []

    async def on_error(e):
        errors.append(e)

    refused = False
    try:
        await nats.connect(url, user="eve", password="x", allow_reconnect=False,
                           max_reconnect_attempts=0, connect_timeout=5, error_cb=on_error)
    except (NatsError, OSError) as e:
        refused = "authorization violation" in str(e).lower() or any(
            "authorization violation" in str(x).lower() for x in errors)
    assert refused, f"eve was not refused with an authorization violation: {errors}"
    print("ok   refused")
    await service.close()


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2]), 30))
