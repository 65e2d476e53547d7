// The checks the JavaScript client tests share: report the first failure and exit non-zero.
export const fail = (msg) => {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
};
export const check = (cond, msg) => {
  if (!cond) fail(msg);
};
