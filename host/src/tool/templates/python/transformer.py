"""{{name}}: a natrium transformer written in Python (componentize-py).

Stamps every message with the account it was published in (header Account) and drops empty
messages, saying why.
"""

from wit_world import exports
from wit_world.exports.transformation import Outcome_Drop, Outcome_Pass, Outcome_Replace
from wit_world.imports.types import Header, Message


def transform(account: str, msg: Message):
    if len(msg.payload) == 0:
        return Outcome_Drop(f"empty message on {msg.subject}")
    if [h.value for h in msg.headers if h.name.lower() == "account"] == [account]:
        return Outcome_Pass()  # unchanged: the broker does not copy the message
    headers = [h for h in msg.headers if h.name.lower() != "account"]
    headers.append(Header(name="Account", value=account))
    return Outcome_Replace(
        Message(subject=msg.subject, reply=msg.reply, headers=headers, payload=msg.payload)
    )


class Transformation(exports.Transformation):
    def transform(self, account: str, msg: Message):
        return transform(account, msg)

    def transform_batch(self, account: str, msgs):
        return [transform(account, m) for m in msgs]
