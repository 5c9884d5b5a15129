#!/usr/bin/env python3
"""Reference model of JG-HMAC-SHA256 and checker for the JSON test vectors beside it.

Run `python3 reference.py` to check every *.json file in this folder, or pass file paths;
it prints one line per failure and ends with "N passed, M failed". Written for reading: a partner porting the scheme can follow it top to bottom. It follows
SPEC.md at the repository root (the specification of the scheme). Standard library only.

Everything on the wire is handled as BYTES: the request-target, header values, the body,
the secrets. JSON strings become bytes by UTF-8 encoding.
"""
import hashlib
import hmac
import json
import sys
from pathlib import Path

ALGORITHM = b"JG-HMAC-SHA256"
UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
DIGITS = frozenset(b"0123456789")
SCHEME_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+-.")
MAX_CLIENT_ID_LEN = 128   # bytes
MAX_TIMESTAMP_DIGITS = 18  # fits a signed 64-bit integer, so parsing never overflows


# ---------------------------------------------------------------- 1. The string to sign

def split_target(target: bytes) -> tuple[bytes, bytes]:
    """Split a request-target into (path, raw query). The path is NOT decoded or normalised."""
    target = target.split(b"#", 1)[0]          # no fragment (RFC 3986: it starts at the first '#')
    scheme, sep, rest = target.partition(b"://")
    if sep and scheme[:1].isalpha() and all(c in SCHEME_CHARS for c in scheme):
        # absolute-form (https://host:443/p?q): drop scheme and authority, keep the rest.
        ends = [i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0]
        target = rest[min(ends):] if ends else b""
    path, _, query = target.partition(b"?")     # the query is everything after the FIRST '?'
    return (path or b"/"), query


def percent_decode(component: bytes) -> bytes:
    """'+' is a space, %XX (either case) is that byte, any other '%' stays literal. Bytes out."""
    out, i = bytearray(), 0
    while i < len(component):
        c, pair = component[i], component[i + 1:i + 3]
        if c == ord("+"):
            out.append(0x20)
            i += 1
        elif c == ord("%") and len(pair) == 2 and all(h in HEX_DIGITS for h in pair):
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(c)                       # includes a '%' not followed by two hex digits
            i += 1
    return bytes(out)


def percent_encode(data: bytes) -> bytes:
    """Every byte outside A-Z a-z 0-9 - . _ ~ becomes %XX with UPPERCASE hex."""
    return b"".join(bytes([c]) if c in UNRESERVED else b"%%%02X" % c for c in data)


def canonical_query(raw_query: bytes) -> bytes:
    pairs = []
    for segment in raw_query.split(b"&"):
        if not segment:
            continue                            # "a=1&&b=2", a leading or trailing '&'
        key, _, value = segment.partition(b"=") # split at the FIRST '='; no '=' means value ""
        pairs.append((percent_encode(percent_decode(key)), percent_encode(percent_decode(value))))
    pairs.sort()                                # by encoded key, then encoded value, bytewise
    return b"&".join(k + b"=" + v for k, v in pairs)


def content_sha256(body: bytes) -> bytes:
    return hashlib.sha256(body).hexdigest().encode()


def string_to_sign(timestamp: bytes, method: bytes, target: bytes, body_hash: bytes) -> bytes:
    path, query = split_target(target)
    # bytes.upper() touches ASCII letters only (str.upper() would turn "ß" into "SS").
    lines = [ALGORITHM, timestamp, method.upper(), path, canonical_query(query), body_hash]
    return b"\n".join(lines)                    # no trailing newline


def sign(secret: bytes, sts: bytes) -> str:
    return hmac.new(secret, sts, hashlib.sha256).hexdigest()   # lowercase hex


# ---------------------------------------------------------------- 2. Verification

def is_visible_ascii(value: bytes) -> bool:
    return len(value) > 0 and all(0x21 <= c <= 0x7E for c in value)


def header_values(headers: list, name: bytes) -> list:
    """All values of a header, in order. Names compare ASCII-case-insensitively (bytes.lower())."""
    return [v for n, v in headers if n.lower() == name.lower()]


def required_header(headers: list, name: bytes):
    """-> (value, None) or (None, error code). Repeats are never resolved by picking one."""
    values = header_values(headers, name)
    if not values:
        return None, "missing_header"
    if len(values) > 1 or not is_visible_ascii(values[0]):   # repeated, empty, space, 0xFF...
        return None, "malformed_header"
    return values[0], None


def client_id_header(headers: list, alias: bool):
    ids = header_values(headers, b"X-Client-Id")
    keys = header_values(headers, b"X-Access-Key") if alias else []   # alias off: ignored
    if not ids and not keys:
        return None, "missing_header"
    if len(ids) > 1 or len(keys) > 1 or (ids and keys and ids[0] != keys[0]):
        return None, "malformed_header"         # the same value under both names is fine
    value = (ids or keys)[0]
    if not is_visible_ascii(value) or len(value) > MAX_CLIENT_ID_LEN:
        return None, "malformed_header"
    return value, None


def content_type_allowed(headers: list, body: bytes, allowed: list) -> bool:
    values = header_values(headers, b"Content-Type")
    if not values:
        return body == b""                      # no Content-Type is only fine with no body
    if len(values) > 1:
        return False                            # ambiguous: never pick one of the copies
    media_type = values[0].split(b";", 1)[0].strip(b" \t").lower()   # bytes.lower(): ASCII only
    return media_type in {a.encode().lower() for a in allowed}


class ReplayGuard:
    """Remembers (client id, signature bytes) pairs that verified. A real one forgets
    entries once their timestamp has left the window; the vectors do not need that."""
    def __init__(self):
        self.seen = set()

    def first_use(self, client_id: bytes, signature: bytes) -> bool:
        if (client_id, signature) in self.seen:
            return False
        self.seen.add((client_id, signature))
        return True


def verify(method, target, headers, body, secrets, now,
           window=300, alias=True, content_types=None, replay_guard=None) -> str:
    """Returns "ok" or a wire error code; the checks run in exactly this order.

    method, target, body: bytes. headers: list of (name, value) byte pairs, in order.
    secrets: {client id: [secret, ...]}, all bytes. now, window: integer seconds.
    content_types: None (no allow-list) or a list of media type strings."""
    # 1. Headers: client id, then timestamp, then signature.
    client_id, err = client_id_header(headers, alias)
    if err:
        return err
    timestamp, err = required_header(headers, b"X-Timestamp")
    if err:
        return err
    if not (len(timestamp) <= MAX_TIMESTAMP_DIGITS and all(c in DIGITS for c in timestamp)):
        return "malformed_header"               # no sign, space, fraction, exponent; leading 0s ok
    signature, err = required_header(headers, b"X-Signature")
    if err:
        return err
    if len(signature) != 64 or not all(c in HEX_DIGITS for c in signature):
        return "malformed_header"               # checked first: bytes.fromhex would skip spaces
    given = bytes.fromhex(signature.decode())   # 32 bytes; upper- and lowercase hex both fine
    # 2. Content-Type allow-list, only when the endpoint has one. Content-Type is not signed.
    if content_types is not None and not content_type_allowed(headers, body, content_types):
        return "unsupported_content_type"
    # 3. Timestamp window (the timestamp is at most 18 digits: no overflow anywhere).
    ts = int(timestamp)
    if now - ts > window or ts - now > window:
        return "timestamp_out_of_range"
    # 4. Client lookup: unknown, or every secret revoked.
    client_secrets = secrets.get(client_id, [])
    if not client_secrets:
        return "client_id"
    # 5. Signature: any active secret may match (rotation). Compare in constant time.
    sts = string_to_sign(timestamp, method, target, content_sha256(body))
    matches = [hmac.compare_digest(hmac.new(s, sts, hashlib.sha256).digest(), given)
               for s in client_secrets]        # every secret is tried: no early exit
    if not any(matches):
        return "invalid_signature"
    # 6. Replay guard, when the verifier has one.
    if replay_guard is not None and not replay_guard.first_use(client_id, given):
        return "replayed_request"
    return "ok"


# ---------------------------------------------------------------- 3. Reading the vector files

SIGNING_KEYS = {"name", "note", "client_id", "secret", "secret_hex", "timestamp", "method",
                "target", "body", "body_hex", "content_sha256", "expected"}
VERIFICATION_KEYS = {"name", "note", "secrets", "now", "window", "alias", "content_types",
                     "replay", "request", "expected"}
REQUEST_KEYS = {"method", "target", "headers", "body", "body_hex"}
DIAGNOSIS_KEYS = {"name", "note", "secret", "signing_secret", "method", "target", "timestamp",
                  "body", "signed", "signature", "expected", "explanation_contains"}
CODES = {"ok", "missing_header", "malformed_header", "timestamp_out_of_range", "client_id",
         "invalid_signature", "unsupported_content_type", "replayed_request"}


def text_or_hex(obj: dict, field: str, default=None) -> bytes:
    """`field` holds UTF-8 text, `field_hex` raw bytes as hex; at most one may be present."""
    if field in obj and field + "_hex" in obj:
        raise ValueError(f"both {field} and {field}_hex")
    if field + "_hex" in obj:
        return bytes.fromhex(obj[field + "_hex"])
    if field in obj:
        return obj[field].encode()
    if default is None:
        raise ValueError(f"{field} or {field}_hex is required")
    return default


def parse_header(entry: list) -> tuple:
    """[name, value] (value as UTF-8 text) or [name, hex, "hex"] (value as raw bytes)."""
    if len(entry) == 2:
        return entry[0].encode(), entry[1].encode()
    if len(entry) == 3 and entry[2] == "hex":
        return entry[0].encode(), bytes.fromhex(entry[1])
    raise ValueError(f"bad header entry {entry!r}")


def check_signing(v: dict) -> list:
    if set(v) - SIGNING_KEYS:
        raise ValueError(f"unknown fields {sorted(set(v) - SIGNING_KEYS)}")
    secret = text_or_hex(v, "secret")
    if "content_sha256" in v:                   # as-printed vector: the body itself is unknown
        if "body" in v or "body_hex" in v:
            raise ValueError("content_sha256 is only for vectors without a body")
        body_hash = v["content_sha256"].encode()
    else:
        body_hash = content_sha256(text_or_hex(v, "body", default=b""))
    target = v["target"].encode()
    sts = string_to_sign(v["timestamp"].encode(), v["method"].encode(), target, body_hash)
    got = {"canonical_query": canonical_query(split_target(target)[1]).decode(),
           "content_sha256": body_hash.decode(),
           "string_to_sign": sts.decode(),
           "signature": sign(secret, sts)}
    exp = v["expected"]
    if set(exp) != set(got):
        raise ValueError(f"expected must have exactly {sorted(got)}")
    return [f"{k}: expected {exp[k]!r}, got {got[k]!r}" for k in got if exp[k] != got[k]]


def check_verification(v: dict) -> list:
    unknown = (set(v) - VERIFICATION_KEYS) | (set(v["request"]) - REQUEST_KEYS)
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    if v["expected"] not in CODES:
        raise ValueError(f"unknown expected code {v['expected']!r}")
    req = v["request"]
    secrets = {cid.encode(): [s.encode() for s in lst] for cid, lst in v["secrets"].items()}
    headers = [parse_header(h) for h in req["headers"]]
    args = dict(method=req["method"].encode(), target=req["target"].encode(), headers=headers,
                body=text_or_hex(req, "body", default=b""), secrets=secrets, now=v["now"],
                window=v.get("window", 300), alias=v.get("alias", True),
                content_types=v.get("content_types"))
    if v.get("replay", False):
        guard = ReplayGuard()                   # one verifier, the same request twice
        first = verify(**args, replay_guard=guard)
        if first != "ok":
            return [f"replay: first submission must be ok, got {first!r}"]
        got = verify(**args, replay_guard=guard)
    else:
        got = verify(**args)
    return [] if got == v["expected"] else [f"expected {v['expected']!r}, got {got!r}"]


def check_diagnosis(v: dict) -> list:
    """A mistaken request of diagnose.json: the partner signed `signed` (a wrong string-to-sign,
    or the right one under a wrong secret) with `signing_secret`. Checked here: the sent
    signature is that HMAC, and `signed` is the right string-to-sign exactly when the
    diagnosis is "none" or a secret mistake. Which mistake it is, is the Rust search's job."""
    if set(v) - DIAGNOSIS_KEYS:
        raise ValueError(f"unknown fields {sorted(set(v) - DIAGNOSIS_KEYS)}")
    if not v["expected"].replace("_", "").isalpha() or v["expected"] != v["expected"].lower():
        raise ValueError(f"expected must be a snake_case code, not {v['expected']!r}")
    secret, signed = v["secret"].encode(), v["signed"].encode()
    signing_secret = v.get("signing_secret", v["secret"]).encode()
    right = string_to_sign(v["timestamp"].encode(), v["method"].encode(), v["target"].encode(),
                           content_sha256(v.get("body", "").encode()))
    problems = []
    if sign(signing_secret, signed) != v["signature"]:
        problems.append(f"signature: expected {sign(signing_secret, signed)!r}, got {v['signature']!r}")
    if hmac.compare_digest(sign(secret, right), v["signature"]) != (v["expected"] == "none"):
        problems.append("the signature must verify exactly when the diagnosis is 'none'")
    if (signed == right) != (v["expected"] in ("none", "secret_whitespace") or secret != signing_secret):
        problems.append("`signed` must differ from the right string-to-sign for a mistake in it")
    return problems


# ---------------------------------------------------------------- 5. The gateway's identity assertion

IDENTITY_DOMAIN = b"JG-IDENTITY-V1"
IDENTITY_HEADERS = [b"x-jg-client-id", b"x-jg-key-id", b"x-jg-scopes", b"x-jg-environment",
                    b"x-request-id"]
IDENTITY_KEYS = {"name", "note", "key", "method", "target", "headers", "now", "max_age",
                 "timestamp", "expected_string", "expected_identity", "expected"}


def identity_string(t: bytes, method: bytes, target: bytes, headers: list):
    """The lines the X-JG-Identity assertion signs (SPEC.md §13); None when a covered header
    is missing or repeated."""
    values = []
    for name in IDENTITY_HEADERS:
        found = header_values(headers, name)
        if len(found) != 1:
            return None
        values.append(found[0])
    return b"\n".join([IDENTITY_DOMAIN, t, method, target] + values)


def identity_verify(key: bytes, method: bytes, target: bytes, headers: list, now: int,
                    max_age: int) -> str:
    """The upstream's check of X-JG-Identity: "ok" or why not."""
    found = header_values(headers, b"x-jg-identity")
    if len(found) != 1:
        return "missing"
    value = found[0]
    if not value.startswith(b"v1;t="):
        return "malformed"
    t, sep, sig = value[5:].partition(b";sig=")
    if not sep or not t or len(t) > 19 or any(c not in DIGITS for c in t) or len(sig) != 64 \
            or any(c not in HEX_DIGITS for c in sig):
        return "malformed"
    if abs(now - int(t)) > max_age:
        return "expired"
    signed = identity_string(t, method, target, headers)
    if signed is None:
        return "missing"
    expected = hmac.new(key, signed, hashlib.sha256).hexdigest().encode()
    return "ok" if hmac.compare_digest(expected, sig.lower()) else "mismatch"


def check_identity(v: dict) -> list:
    """An identity vector: with `timestamp`, the assertion the gateway adds (its string and
    value); always, the upstream's verdict on the request as given."""
    if set(v) - IDENTITY_KEYS:
        raise ValueError(f"unknown fields {sorted(set(v) - IDENTITY_KEYS)}")
    key, method, target = v["key"].encode(), v["method"].encode(), v["target"].encode()
    headers = [parse_header(h) for h in v["headers"]]
    problems = []
    if "timestamp" in v:
        t = str(v["timestamp"]).encode()
        signed = identity_string(t, method, target, headers)
        value = b"v1;t=" + t + b";sig=" + hmac.new(key, signed, hashlib.sha256).hexdigest().encode()
        if signed.decode() != v["expected_string"]:
            problems.append(f"string: expected {v['expected_string']!r}, got {signed.decode()!r}")
        if value.decode() != v["expected_identity"]:
            problems.append(f"identity: expected {v['expected_identity']!r}, got {value.decode()!r}")
    got = identity_verify(key, method, target, headers, v["now"], v["max_age"])
    if got != v["expected"]:
        problems.append(f"verdict: expected {v['expected']!r}, got {got!r}")
    return problems


def main(argv: list) -> int:
    files = [Path(a) for a in argv] or sorted(Path(__file__).resolve().parent.glob("*.json"))
    passed = failed = 0
    for path in files:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            groups = [("signing", check_signing, doc["signing"]),
                      ("verification", check_verification, doc["verification"]),
                      ("diagnosis", check_diagnosis, doc.get("diagnosis", [])),
                      ("identity", check_identity, doc.get("identity", []))]
            if not (isinstance(doc["description"], str) and isinstance(doc["source"], str)):
                raise ValueError("description and source must be strings")
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"FAIL {path.name}: cannot load: {e}")
            failed += 1
            continue
        names = set()
        for kind, check, vectors in groups:
            for v in vectors:
                label = f"{path.name}: {kind} {v.get('name', '?')!r}"
                try:
                    if v["name"] in names:
                        raise ValueError("duplicate vector name")
                    names.add(v["name"])
                    problems = check(v)
                except (ValueError, KeyError, TypeError, AttributeError) as e:
                    problems = [f"bad vector: {e!r}"]
                if problems:
                    failed += 1
                    print(f"FAIL {label}: " + "; ".join(problems))
                else:
                    passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
