"""Builds an operator/account/user chain with the PyPI `nkeys` package (and,
when installed, `nats-jwt`), for natrium's Rust interop test. Prints JSON.

Mode "handmade": JWTs assembled here, signed with nkeys (needs: nkeys).
Mode "nats_jwt": JWTs made by the nats-jwt package (needs: nats-jwt).
"""
import base64, hashlib, json, os, sys, time

import nkeys

MODE = sys.argv[1] if len(sys.argv) > 1 else "handmade"


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def new_pair(prefix):
    seed = nkeys.encode_seed(os.urandom(32), prefix)
    return nkeys.from_seed(bytearray(seed))


def pub(kp):
    return kp.public_key.decode()


def handmade_jwt(claims, kp):
    claims = dict(claims)
    claims["iss"] = pub(kp)
    claims["iat"] = int(time.time())
    h = hashlib.new("sha512_256", json.dumps(claims, separators=(",", ":")).encode())
    claims["jti"] = base64.b32encode(h.digest()).decode().rstrip("=")
    header = b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    payload = b64(json.dumps(claims).encode())
    sig = kp.sign(f"{header}.{payload}".encode())
    return f"{header}.{payload}.{b64(sig)}"


def creds(jwt, seed):
    return (
        "-----BEGIN NATS USER JWT-----\n%s\n------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n\n"
        "-----BEGIN USER NKEY SEED-----\n%s\n------END USER NKEY SEED------\n" % (jwt, seed)
    )


op = new_pair(nkeys.PREFIX_BYTE_OPERATOR)
acc = new_pair(nkeys.PREFIX_BYTE_ACCOUNT)
acc_sk = new_pair(nkeys.PREFIX_BYTE_ACCOUNT)
user = new_pair(nkeys.PREFIX_BYTE_USER)
user2 = new_pair(nkeys.PREFIX_BYTE_USER)
nonce = "abcdefghijklmno"
out = {"operator": pub(op), "account": pub(acc), "account_sk": pub(acc_sk),
       "user": pub(user), "user2": pub(user2), "nonce": nonce,
       "nonce_sig": base64.b64encode(user.sign(nonce.encode())).decode(),
       "nonce_sig2": base64.b64encode(user2.sign(nonce.encode())).decode()}

if MODE == "handmade":
    out["operator_jwt"] = handmade_jwt({"sub": pub(op), "name": "OP", "nats": {
        "type": "operator", "version": 2}}, op)
    out["account_jwt"] = handmade_jwt({"sub": pub(acc), "name": "ACC", "nats": {
        "limits": {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
                   "wildcards": True, "conn": -1, "leaf": -1},
        "signing_keys": [pub(acc_sk)], "type": "account", "version": 2}}, op)
    out["user_jwt"] = handmade_jwt({"sub": pub(user), "name": "u1", "nats": {
        "pub": {"allow": ["orders.>"]}, "sub": {"deny": ["secret.>"]},
        "subs": -1, "data": -1, "payload": -1, "type": "user", "version": 2}}, acc)
    out["user2_jwt"] = handmade_jwt({"sub": pub(user2), "name": "u2", "nats": {
        "issuer_account": pub(acc), "subs": -1, "data": -1, "payload": -1,
        "type": "user", "version": 2}}, acc_sk)
else:
    from nats_jwt.v2.operator_claims import OperatorClaims
    from nats_jwt.v2.account_claims import AccountClaims
    from nats_jwt.v2.user_claims import UserClaims
    oc = OperatorClaims(pub(op), "OP")
    out["operator_jwt"] = oc.encode(op)
    ac = AccountClaims(pub(acc), "ACC")
    ac.nats.signing_keys.add(pub(acc_sk))
    out["account_jwt"] = ac.encode(op)
    uc = UserClaims(pub(user), "u1")
    uc.nats.pub.allow = ["orders.>"]
    uc.nats.sub.deny = ["secret.>"]
    out["user_jwt"] = uc.encode(acc)
    uc2 = UserClaims(pub(user2), "u2")
    uc2.nats.issuer_account = pub(acc)
    out["user2_jwt"] = uc2.encode(acc_sk)

out["creds"] = creds(out["user_jwt"], user.seed.decode())
print(json.dumps(out))
