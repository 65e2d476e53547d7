"""Runs the built component ({{name}}.wasm: ./build.sh first) in natrium's sandbox with
`natrium plugin run` on each sample of samples.json, and checks the decision.

    python3 -m unittest -v        # the natrium binary is $NATRIUM, else `natrium` on PATH
"""

import json
import os
import subprocess
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
NATRIUM = os.environ.get("NATRIUM", "natrium")

with open(os.path.join(HERE, "samples.json"), encoding="utf-8") as f:
    SAMPLES = json.load(f)


def contains(got, want):
    """True when every member of `want` is in `got` (dicts: recursively; else: equal)."""
    if isinstance(want, dict):
        return isinstance(got, dict) and all(contains(got.get(k), v) for k, v in want.items())
    return got == want


class PluginRun(unittest.TestCase):
    def test_samples(self):
        for sample in SAMPLES["samples"]:
            args = sample["args"]
            with self.subTest(args=args):
                out = subprocess.run(
                    [NATRIUM, "plugin", "run", os.path.join(HERE, "{{name}}.wasm"),
                     "--world", SAMPLES["world"], "--config", json.dumps(SAMPLES["config"]),
                     # Generous: the test checks decisions; a new instance's first call
                     # starts the interpreter.
                     "--deadline", "1s", "--json", *args],
                    check=True, capture_output=True, text=True,
                ).stdout
                got = json.loads(out)
                self.assertTrue(contains(got, sample["expect"]),
                                f"got {out}\nwant {sample['expect']}")


if __name__ == "__main__":
    unittest.main()
