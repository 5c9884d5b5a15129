#!/usr/bin/env python3
"""Builds the fuzzers' seed corpus from the language-neutral vectors in test-vectors/.

    python3 fuzz/seed-corpus.py [OUT_DIR]      # default: fuzz/corpus

Writes one file per seed into OUT_DIR/<target>/, named by its SHA-1, in the input format
each target documents at the top of fuzz/fuzz_targets/<target>.rs. Existing files are
kept, so a corpus grown by earlier runs is not lost. Standard library only.
"""
import hashlib
import json
import pathlib
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT / "test-vectors"
WINDOWS = {300: 0, 0: 1, 5: 2}        # verify.rs flags bits 2-3


def raw_bytes(v, key, hex_key):
    if hex_key in v:
        return bytes.fromhex(v[hex_key])
    return v.get(key, "").encode()


def query_of(target: bytes) -> bytes:
    target = target.split(b"#", 1)[0]
    return target.split(b"?", 1)[1] if b"?" in target else b""


def header_bytes(entry):
    name, value = entry[0].encode(), entry[1]
    value = bytes.fromhex(value) if len(entry) == 3 else value.encode()
    return name + b":" + value


def pick_sep(fields):
    for sep in [0, 0xFF, 1, 0x0A, *range(2, 255)]:
        if all(bytes([sep]) not in f for f in fields):
            return sep
    raise SystemExit("no free separator byte")


def join(sep, fields):
    return bytes([sep]).join(fields)


def raw_requests(method, target, body, headers):
    """The request as HTTP/1.1 text: with CRLF, with bare LF, and chunked when it has a body."""
    out = []
    for eol in (b"\r\n", b"\n"):
        head = [method + b" " + (target or b"/") + b" HTTP/1.1", b"Host: api.justgold.me"]
        head += [h.replace(b":", b": ", 1) for h in headers]
        if body:
            out.append(eol.join(head + [b"Content-Length: %d" % len(body), b"", body]))
            half = len(body) // 2
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (body[:half], body[half:]) if c)
            out.append(eol.join(head + [b"Transfer-Encoding: chunked", b"", chunks + b"0\r\n\r\n"]))
        else:
            out.append(eol.join(head + [b"", b""]))
    return out


def main():
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz" / "corpus"
    seeds = {"canonical_query": set(), "verify": set(), "sign_verify": set(), "raw_http": set()}
    for path in sorted(VECTORS.glob("*.json")):
        data = json.loads(path.read_text())
        for v in data["signing"]:
            target = v["target"].encode()
            seeds["canonical_query"].add(query_of(target))
            body = raw_bytes(v, "body", "body_hex")
            secret = raw_bytes(v, "secret", "secret_hex")
            fields = [v["method"].encode(), target, body, secret,
                      v.get("client_id", "jk_live_example").encode()]
            sep = pick_sep(fields)
            ts = int(v["timestamp"]) if v["timestamp"].isdigit() else 0
            for which in range(6):   # one seed per field that sign_verify changes
                control = struct.pack("<BBHBQh", sep, which, 7 * which + 1, 0x20, ts, 0)
                seeds["sign_verify"].add(control + join(sep, fields))
        for v in data["verification"]:
            req = v["request"]
            target = req["target"].encode()
            seeds["canonical_query"].add(query_of(target))
            flags = 0
            if not v.get("alias", True):
                flags |= 1
            if "content_types" in v:
                flags |= 2
            flags |= WINDOWS.get(v.get("window", 300), 0) << 2
            fields = [req["method"].encode(), target, raw_bytes(req, "body", "body_hex"),
                      str(v["now"]).encode(), *map(header_bytes, req["headers"])]
            sep = pick_sep(fields)
            seeds["verify"].add(bytes([sep, flags]) + join(sep, fields))
            seeds["raw_http"].update(raw_requests(req["method"].encode(), target,
                                                  raw_bytes(req, "body", "body_hex"),
                                                  list(map(header_bytes, req["headers"]))))
    total = 0
    for target, items in seeds.items():
        folder = out / target
        folder.mkdir(parents=True, exist_ok=True)
        for item in items:
            (folder / hashlib.sha1(item).hexdigest()).write_bytes(item)
        total += len(items)
        print(f"{target}: {len(items)} seeds in {folder}")
    print(f"{total} seeds")


if __name__ == "__main__":
    main()
