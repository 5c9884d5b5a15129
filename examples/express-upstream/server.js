// An Express app behind `jg-hmac gateway`. Every route checks X-JG-Identity and echoes what
// it saw (method, target as received, identity, body hash), so a test or an operator can
// see exactly what the gateway forwarded.
//
//   JG_IDENTITY_KEY_FILE=/run/secrets/identity.key PORT=3000 node server.js
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const express = require('express');
const { jgIdentity } = require('./identity');

function readKey(path) {
  let key = fs.readFileSync(path);
  // One trailing newline (LF or CRLF) is not part of the key, as for the gateway.
  if (key.length && key[key.length - 1] === 0x0a) key = key.subarray(0, key.length - 1);
  if (key.length && key[key.length - 1] === 0x0d) key = key.subarray(0, key.length - 1);
  return key;
}

function app(key) {
  const server = express();
  // The seed's unsigned health route: no identity is expected there.
  server.get('/v1/health', (req, res) => res.json({ status: 'ok' }));
  server.use(jgIdentity({ key }));
  server.use(express.raw({ type: () => true, limit: '10mb' }));
  server.all('/*splat', (req, res) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    res.json({
      method: req.method,
      target: req.originalUrl,
      identity: req.jg,
      bodySha256: crypto.createHash('sha256').update(body).digest('hex'),
      bodyLength: body.length,
    });
  });
  return server;
}

if (require.main === module) {
  const keyFile = process.env.JG_IDENTITY_KEY_FILE;
  if (!keyFile) {
    console.error('JG_IDENTITY_KEY_FILE is required');
    process.exit(2);
  }
  const listener = app(readKey(keyFile)).listen(Number(process.env.PORT || 3000), '127.0.0.1', () => {
    // The test reads this line to learn the port.
    console.log(`listening on ${listener.address().port}`);
  });
}

module.exports = { app };
