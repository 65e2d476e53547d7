// {{name}}: a natrium transformer written in JavaScript (componentize-js).
//
// Stamps every message with the account it was published in (header Account) and drops
// empty messages, saying why.

function transform(account, msg) {
  if (msg.payload.length === 0) return { tag: "drop", val: `empty message on ${msg.subject}` };
  const isAccount = (h) => h.name.toLowerCase() === "account";
  const stamped = msg.headers.filter(isAccount);
  if (stamped.length === 1 && stamped[0].value === account) {
    return { tag: "pass" }; // unchanged: the broker does not copy the message
  }
  const headers = msg.headers.filter((h) => !isAccount(h));
  headers.push({ name: "Account", value: account });
  return { tag: "replace", val: { ...msg, headers } };
}

export const transformation = {
  transform,
  transformBatch(account, msgs) {
    return msgs.map((m) => transform(account, m));
  },
};
