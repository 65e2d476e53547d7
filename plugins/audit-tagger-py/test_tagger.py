import unittest

import tagger


class TaggerTest(unittest.TestCase):
    def test_stamps_and_replaces_spoofed_headers(self):
        t = tagger.Tagger(tagger.load_config('{"tags": {"Env": "prod"}}'))
        kind, headers, fields = t.decide(
            "ACME", "orders.x", [("Natrium-Account", "SPOOF"), ("Trace-Id", "1")], 12, 1_800_000_000_123_456_789
        )
        self.assertEqual(kind, "tag")
        self.assertEqual(
            headers,
            [
                ("Trace-Id", "1"),
                ("Natrium-Account", "ACME"),
                ("Natrium-Received-At", "2027-01-15T08:00:00.123456789Z"),
                ("Natrium-Audit-Id", "18fae2769b0fcd15-1"),
                ("Env", "prod"),
            ],
        )
        self.assertIn(("subject", "orders.x"), fields)
        self.assertEqual(t.decide("A", "s", [], 0, 1)[1][2], ("Natrium-Audit-Id", "1-2"))

    def test_drops(self):
        t = tagger.Tagger(tagger.load_config('{"max_payload": 10, "require_headers": ["Trace-Id"]}'))
        self.assertEqual(t.decide("A", "s", [("trace-id", "x")], 11, 0)[0], "drop")
        self.assertIn("missing required header 'Trace-Id'", t.decide("A", "s", [], 5, 0)[1])
        self.assertEqual(t.decide("A", "s", [("TRACE-ID", "x")], 10, 0)[0], "tag")

    def test_headers_can_be_turned_off(self):
        t = tagger.Tagger(tagger.load_config('{"time_header": "", "id_header": ""}'))
        self.assertEqual(t.decide("A", "s", [], 0, 0)[1], [("Natrium-Account", "A")])

    def test_bad_configs(self):
        for text, needle in [
            ("[1]", "JSON object"),
            ("nope", "not JSON"),
            ('{"tagz": {}}', "unknown configuration keys: tagz"),
            ('{"tags": {"A B": "x"}}', "tags"),
            ('{"tags": {"A": "x\\ny"}}', "single-line"),
            ('{"max_payload": -1}', "max_payload"),
            ('{"log": "yes"}', "log"),
        ]:
            with self.assertRaises(tagger.ConfigError) as cm:
                tagger.load_config(text)
            self.assertIn(needle, str(cm.exception))
        self.assertEqual(tagger.load_config("")["max_payload"], 0)


if __name__ == "__main__":
    unittest.main()
