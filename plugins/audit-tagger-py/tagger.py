"""Pure logic of the audit-tagger plugin: no WIT bindings here, so it is testable with plain
CPython (`python3 -m unittest` in this directory)."""

import json
import time

DEFAULTS = {
    # Header names stamped on every message ("" turns one off).
    "account_header": "Natrium-Account",
    "time_header": "Natrium-Received-At",
    "id_header": "Natrium-Audit-Id",
    # Extra static headers, e.g. {"Env": "prod"}.
    "tags": {},
    # Drop messages larger than this many bytes (0 = no limit).
    "max_payload": 0,
    # Drop messages that lack any of these headers (e.g. ["Trace-Id"]).
    "require_headers": [],
    # Write one structured audit line per message to the broker's log.
    "log": False,
}


class ConfigError(ValueError):
    """The plugin's configuration cannot be used."""


def load_config(text):
    """Parses and checks the JSON configuration; returns a dict with every key set."""
    try:
        raw = json.loads(text or "{}")
    except ValueError as e:
        raise ConfigError(f"configuration is not JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError("configuration must be a JSON object")
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown configuration keys: {', '.join(unknown)}")
    cfg = dict(DEFAULTS)
    cfg.update(raw)
    for key in ("account_header", "time_header", "id_header"):
        if not isinstance(cfg[key], str) or not valid_header_name(cfg[key], allow_empty=True):
            raise ConfigError(f"{key} must be a header name")
    tags = cfg["tags"]
    if not isinstance(tags, dict) or not all(
        valid_header_name(k) and isinstance(v, str) and "\r" not in v and "\n" not in v
        for k, v in tags.items()
    ):
        raise ConfigError("tags must map header names to single-line strings")
    if not isinstance(cfg["max_payload"], int) or cfg["max_payload"] < 0:
        raise ConfigError("max_payload must be a non-negative integer")
    req = cfg["require_headers"]
    if not isinstance(req, list) or not all(isinstance(h, str) and valid_header_name(h) for h in req):
        raise ConfigError("require_headers must be a list of header names")
    if not isinstance(cfg["log"], bool):
        raise ConfigError("log must be true or false")
    return cfg


def valid_header_name(name, allow_empty=False):
    if name == "":
        return allow_empty
    return all(33 <= ord(c) <= 126 and c != ":" for c in name)


def rfc3339_nanos(now_ns):
    """`2026-11-26T07:47:42.123456789Z` for nanoseconds since the Unix epoch."""
    secs, nanos = divmod(now_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"


class Tagger:
    """Decides what happens to one message. Header lists are lists of (name, value) pairs."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.counter = 0

    def audit_id(self, now_ns):
        # Unique per instance and time: the instance counter breaks ties within a nanosecond.
        self.counter += 1
        return f"{now_ns:x}-{self.counter:x}"

    def decide(self, account, subject, headers, payload_len, now_ns):
        """Returns ("drop", reason) or ("tag", new_headers, log_fields)."""
        cfg = self.cfg
        if cfg["max_payload"] and payload_len > cfg["max_payload"]:
            return ("drop", f"payload of {payload_len} bytes exceeds max_payload {cfg['max_payload']}")
        present = {name.lower() for name, _ in headers}
        for h in cfg["require_headers"]:
            if h.lower() not in present:
                return ("drop", f"missing required header {h!r}")
        stamps = []
        if cfg["account_header"]:
            stamps.append((cfg["account_header"], account))
        if cfg["time_header"]:
            stamps.append((cfg["time_header"], rfc3339_nanos(now_ns)))
        audit_id = self.audit_id(now_ns)
        if cfg["id_header"]:
            stamps.append((cfg["id_header"], audit_id))
        stamps.extend(cfg["tags"].items())
        # Our stamps replace any value a publisher set for the same names (no spoofing).
        ours = {name.lower() for name, _ in stamps}
        new_headers = [(n, v) for n, v in headers if n.lower() not in ours] + stamps
        fields = [("account", account), ("subject", subject), ("bytes", str(payload_len)), ("id", audit_id)]
        return ("tag", new_headers, fields)
