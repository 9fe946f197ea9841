// Reads a JSON array of JSON texts on stdin; prints the array of JSON.stringify(JSON.parse(text)).
// Used by tests/receiver/test_signature_vectors.py to cross-check signature.js_stringify.
'use strict';
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const texts = JSON.parse(input);
  process.stdout.write(JSON.stringify(texts.map((text) => JSON.stringify(JSON.parse(text)))));
});
