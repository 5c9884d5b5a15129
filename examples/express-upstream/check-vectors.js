// Runs test-vectors/identity.json through identity.js: `npm test`.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { verify } = require('./identity');

const doc = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'test-vectors', 'identity.json'), 'utf8'));
let failed = 0;
for (const v of doc.identity) {
  const rawHeaders = v.headers.flatMap(([name, value]) => [name, value]);
  const got = verify({ key: Buffer.from(v.key), method: v.method, target: v.target, rawHeaders, now: v.now, maxAge: v.max_age });
  if (got !== v.expected) {
    failed += 1;
    console.log(`FAIL ${v.name}: expected ${v.expected}, got ${got}`);
  }
}
console.log(`${doc.identity.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
