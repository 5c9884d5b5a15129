#!/usr/bin/env python3
"""Writes N pre-signed, unique GET requests for wrk (one per line: target, timestamp,
signature, tab-separated), signed now with JG-HMAC-SHA256 by test-vectors/reference.py.

usage: presign.py N CLIENT_ID SECRET OUT
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "test-vectors"))
import reference  # noqa: E402

n, client, secret, out = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode(), sys.argv[4]
ts = str(int(time.time())).encode()
empty = reference.content_sha256(b"")
with open(out, "w") as f:
    for i in range(n):
        target = f"/v1/balance?currency=XAU&n={i}".encode()
        sts = reference.string_to_sign(ts, b"GET", target, empty)
        f.write(f"{target.decode()}\t{ts.decode()}\t{reference.sign(secret, sts)}\n")
