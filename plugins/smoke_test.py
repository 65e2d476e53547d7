"""Component-level smoke tests of the built plugins, independent of the broker.

Loads each component from target/plugins/ (run plugins/build.sh first) with wasmtime-py, links a
test double of the `natrium:plugin/host` interface plus a WASI 0.2 context that grants nothing
(no preopened directories, no network, no environment), and calls the exports the way the
broker does.

    python3 -m pip install wasmtime==50.0.1
    python3 plugins/smoke_test.py          # or: python3 -m unittest -v smoke_test (in plugins/)

Tests of components that are missing are skipped.
"""

import base64
import hashlib
import hmac
import json
import os
import time
import unittest

try:
    import wasmtime
    import wasmtime.component as wc
except ImportError:  # pragma: no cover
    wasmtime = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.environ.get("NATRIUM_PLUGIN_OUT", os.path.join(ROOT, "target", "plugins"))
ENGINE = wasmtime.Engine() if wasmtime else None

AUTHORIZATION = "natrium:plugin/authorization@0.1.0"
MAPPING = "natrium:plugin/mapping@0.1.0"
TRANSFORMATION = "natrium:plugin/transformation@0.1.0"


class Rec:
    """A WIT record for wasmtime-py: fields as attributes, under their WIT (kebab) names too."""

    def __init__(self, **fields):
        for k, v in fields.items():
            setattr(self, k, v)
            setattr(self, k.replace("_", "-"), v)


def field(rec, name):
    return getattr(rec, name.replace("_", "-"))


class Plugin:
    def __init__(self, name, config, now_ns=None):
        path = os.path.join(OUT, name + ".wasm")
        if not os.path.exists(path):
            raise unittest.SkipTest(f"{path} not built")
        self.logs = []
        component = wc.Component.from_file(ENGINE, path)
        linker = wc.Linker(ENGINE)
        linker.add_wasip2()
        with linker.root() as root:
            with root.add_instance("natrium:plugin/host@0.1.0") as host:
                host.add_func("log", lambda _s, level, msg, fields: self.logs.append((level, msg, fields)))
                host.add_func("config", lambda _s: json.dumps(config))
                host.add_func("now", lambda _s: now_ns if now_ns is not None else time.time_ns())
            with root.add_instance("natrium:plugin/types@0.1.0"):
                pass
        self.store = wasmtime.Store(ENGINE)
        self.store.set_wasi(wasmtime.WasiConfig())
        self.instance = linker.instantiate(self.store, component)

    def call(self, interface, func, *args):
        iface = self.instance.get_export_index(self.store, interface)
        f = self.instance.get_func(self.store, self.instance.get_export_index(self.store, func, iface))
        return f(self.store, *args)


def message(subject, payload, headers=()):
    return Rec(
        subject=subject,
        reply=None,
        headers=[Rec(name=n, value=v) for n, v in headers],
        payload=payload,
    )


def connect(**creds):
    fields = dict(
        user=None, pass_=None, auth_token=None, jwt=None, nkey=None, nkey_verified=False,
        name=None, lang=None, version=None, client_ip="127.0.0.1", client_port=5000,
        server_name="n", server_id="id", tls=None,
    )
    fields.update(creds)
    r = Rec(**{k: v for k, v in fields.items() if k != "pass_"})
    setattr(r, "pass", fields["pass_"])
    return r


@unittest.skipIf(wasmtime is None, "pip install wasmtime")
class SmokeTest(unittest.TestCase):
    def test_partition_mapper(self):
        p = Plugin("partition-mapper", {"rules": [{
            "subject": "orders.*.created", "key_token": 2, "partitions": 10,
            "template": "orders.{partition}.{2}.created"}]})
        self.assertTrue(p.call(MAPPING, "deterministic"))
        # Same pinned hash as the crate's unit test: "acme" -> slot 9 of 10.
        self.assertEqual(p.call(MAPPING, "map", "ACME", "orders.acme.created"), "orders.p9.acme.created")
        self.assertIsNone(p.call(MAPPING, "map", "ACME", "orders.acme.deleted"))

    def test_pii_redactor(self):
        p = Plugin("pii-redactor", {})
        out = p.call(TRANSFORMATION, "transform", "ACME",
                     message("a.b", b'{"email":"ann@example.com","card":4111111111111111}', [("X", "1")]))
        self.assertEqual(field(out, "payload"), b'{"email":"[REDACTED:email]","card":"[REDACTED:card]"}')
        headers = [(field(h, "name"), field(h, "value")) for h in field(out, "headers")]
        self.assertEqual(headers, [("X", "1"), ("Natrium-Redacted", "email=1,card=1")])
        self.assertIsNone(p.call(TRANSFORMATION, "transform", "ACME", message("a.b", b"clean")))
        outs = p.call(TRANSFORMATION, "transform-batch", "ACME",
                      [message("a", b"clean"), message("b", b"mail bob@example.org")])
        self.assertEqual(len(outs), 2)
        self.assertIsNone(outs[0])
        self.assertEqual(field(outs[1], "payload"), b"mail [REDACTED:email]")

    def test_json_validator(self):
        p = Plugin("json-validator", {"schema": {
            "type": "object", "required": ["qty"], "properties": {"qty": {"type": "integer", "minimum": 1}}}})
        self.assertIsNone(p.call(TRANSFORMATION, "transform", "A", message("s", b'{"qty":2}')))
        self.assertEqual(p.call(TRANSFORMATION, "transform", "A", message("s", b'{"qty":0}')),
                         "schema violation at /qty: 0 is less than the minimum 1")
        bad = Plugin("json-validator", {"schema": {"type": "nope"}})
        self.assertIn("misconfigured", bad.call(TRANSFORMATION, "transform", "A", message("s", b"{}")))

    def test_jwt_authorizer(self):
        secret = "0123456789abcdef0123456789abcdef"
        now = 1_800_000_000
        p = Plugin("jwt-authorizer", {
            "issuer": "idp", "hs256_secret": secret,
            "tenants": {"acme": {"account": "ACME", "publish": {"allow": ["acme.>"]}}},
        }, now_ns=now * 1_000_000_000)

        def b64(b):
            return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

        def token(claims):
            signed = b64(b'{"alg":"HS256"}') + "." + b64(json.dumps(claims).encode())
            sig = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
            return signed + "." + b64(sig)

        good = token({"iss": "idp", "tenant": "acme", "sub": "bob", "exp": now + 60})
        allowed = p.call(AUTHORIZATION, "authorize", connect(auth_token=good))
        self.assertEqual(field(allowed, "account"), "ACME")
        self.assertEqual(field(allowed, "user"), "bob")
        self.assertEqual(field(field(allowed, "publish"), "allow"), ["acme.>"])
        self.assertEqual(field(allowed, "expires_at"), (now + 60) * 1_000_000_000)
        expired = token({"iss": "idp", "tenant": "acme", "exp": now - 3600})
        self.assertIn("expired", p.call(AUTHORIZATION, "authorize", connect(jwt=expired)))
        self.assertIn("no bearer token", p.call(AUTHORIZATION, "authorize", connect()))

    def test_audit_tagger_python(self):
        now = 1_800_000_000_123_456_789
        p = Plugin("audit-tagger", {"tags": {"Env": "prod"}, "log": True, "max_payload": 8}, now_ns=now)
        out = p.call(TRANSFORMATION, "transform", "ACME", message("a.b", b"hi", [("Natrium-Account", "X")]))
        headers = [(field(h, "name"), field(h, "value")) for h in field(out, "headers")]
        self.assertEqual(headers, [
            ("Natrium-Account", "ACME"),
            ("Natrium-Received-At", "2027-01-15T08:00:00.123456789Z"),
            ("Natrium-Audit-Id", f"{now:x}-1"),
            ("Env", "prod"),
        ])
        self.assertEqual(len(p.logs), 1)
        self.assertIn("exceeds max_payload",
                      p.call(TRANSFORMATION, "transform", "ACME", message("a.b", b"123456789")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
