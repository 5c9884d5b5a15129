// Checks the X-JG-Identity assertion that `jg-hmac gateway` adds (SPEC.md §13), with node's
// crypto only. `verify` is the check; `jgIdentity` is the Express middleware around it.
'use strict';

const crypto = require('node:crypto');

const COVERED = ['x-jg-client-id', 'x-jg-key-id', 'x-jg-scopes', 'x-jg-environment', 'x-request-id'];

// Every value of each header, by lower-case name, as bytes. From rawHeaders: node joins
// repeated unknown headers with ", " in req.headers, which would hide a repeat.
function headerValues(rawHeaders) {
  const values = new Map();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    if (!values.has(name)) values.set(name, []);
    values.get(name).push(Buffer.from(rawHeaders[i + 1], 'latin1'));
  }
  return values;
}

// 'ok', or why not: 'missing', 'malformed', 'expired', 'mismatch'.
function verify({ key, method, target, rawHeaders, now, maxAge = 30 }) {
  const values = headerValues(rawHeaders);
  const identity = values.get('x-jg-identity') || [];
  if (identity.length !== 1) return 'missing';
  const match = /^v1;t=([0-9]{1,19});sig=([0-9a-fA-F]{64})$/.exec(identity[0].toString('latin1'));
  if (!match) return 'malformed';
  const t = match[1];
  if (Math.abs(now - Number(t)) > maxAge) return 'expired';
  const lines = [Buffer.from('JG-IDENTITY-V1'), Buffer.from(t), Buffer.from(method), Buffer.from(target, 'latin1')];
  for (const name of COVERED) {
    const found = values.get(name) || [];
    if (found.length !== 1) return 'missing';
    lines.push(found[0]);
  }
  const parts = [];
  lines.forEach((line, i) => { if (i > 0) parts.push(Buffer.from('\n')); parts.push(line); });
  const expected = crypto.createHmac('sha256', key).update(Buffer.concat(parts)).digest();
  const claimed = Buffer.from(match[2], 'hex');
  return crypto.timingSafeEqual(expected, claimed) ? 'ok' : 'mismatch';
}

// Express middleware: refuses (401) a request whose identity did not come from the gateway;
// otherwise sets req.jg = { clientId, keyId, scopes, environment, requestId }.
function jgIdentity({ key, maxAge = 30, clock = () => Math.floor(Date.now() / 1000) }) {
  return (req, res, next) => {
    const verdict = verify({
      key, method: req.method, target: req.originalUrl, rawHeaders: req.rawHeaders, now: clock(), maxAge,
    });
    if (verdict !== 'ok') {
      res.status(401).json({ status: 401, error: 'gateway_identity_' + verdict, message: 'X-JG-Identity refused: ' + verdict });
      return;
    }
    const scopes = req.get('x-jg-scopes');
    req.jg = {
      clientId: req.get('x-jg-client-id'),
      keyId: req.get('x-jg-key-id'),
      scopes: scopes === '' ? [] : scopes.split(' '),
      environment: req.get('x-jg-environment'),
      requestId: req.get('x-request-id'),
    };
    next();
  };
}

module.exports = { verify, jgIdentity };
