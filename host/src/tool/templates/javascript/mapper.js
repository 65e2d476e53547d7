// {{name}}: a natrium mapper written in JavaScript (componentize-js).
//
// Moves subjects from an old prefix to a new one (legacy.orders.1 -> v2.orders.1), leaving
// every other subject as it is. Deterministic: the broker caches the result per
// (account, subject).

export const mapping = {
  deterministic() {
    return true;
  },
  map(_account, subject) {
    return subject.startsWith("legacy.") ? `v2.${subject.slice("legacy.".length)}` : undefined;
  },
};
