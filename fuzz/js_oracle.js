// The independent oracle for fuzz/signature_verify.py: what eduMe (Node.js) would sign.
// One request per line on stdin: {"body": "<base64>", "secret": "<text>"}. One answer per line:
//   {"json": false}                       the body is not strict UTF-8 JSON text for JSON.parse
//   {"json": true, "depth": n, "text": s, "signature": hex}
// where s = JSON.stringify(JSON.parse(body)), hex = HMAC-SHA256(secret, s) as eduMe computes it,
// and n = the nesting depth of the value (the harness skips absurdly deep ones).
'use strict';
const crypto = require('crypto');
const readline = require('readline');

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function depthOf(value) {
  let deepest = 0;
  const stack = [[value, 0]];
  while (stack.length) {
    const [item, depth] = stack.pop();
    if (item === null || typeof item !== 'object') continue;
    deepest = Math.max(deepest, depth + 1);
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
  return deepest;
}

function answer(request) {
  let value;
  try {
    value = JSON.parse(decoder.decode(Buffer.from(request.body, 'base64')));
  } catch (error) {
    return { json: false };
  }
  const depth = depthOf(value);
  if (depth > request.max_depth) return { json: true, depth };
  const text = JSON.stringify(value);
  const signature = crypto.createHmac('sha256', request.secret).update(text).digest('hex');
  return { json: true, depth, text, signature };
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  process.stdout.write(JSON.stringify(answer(JSON.parse(line))) + '\n');
});
