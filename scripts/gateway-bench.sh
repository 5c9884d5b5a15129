#!/usr/bin/env bash
# The gateway's throughput and latency beside nginx, same machine, same run (issue 19):
#   (a) wrk -> upstream                     (direct)
#   (b) wrk -> nginx proxy_pass -> upstream (plain reverse proxy, keep-alive upstream)
#   (c) wrk -> jg-hmac gateway -> upstream  (verifying every request, replay guard on)
#   (d) the same with the route --public    (forwarding alone, to see what verifying costs)
# The upstream is an nginx server block answering 200 "ok". Every request is pre-signed and
# unique (scripts/gateway-bench/presign.py), sent by wrk through scripts/gateway-bench/requests.lua;
# the same requests go to all three, and (c) must answer every one with 200.
#
# usage: scripts/gateway-bench.sh [SECONDS] [CONNECTIONS]    (needs nginx and wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-10}"
CONNECTIONS="${2:-64}"
THREADS=2
CLIENT=jk_live_bench
SECRET=bench_secret_for_the_gateway
for tool in nginx wrk; do
  command -v "$tool" >/dev/null || { echo "$tool is required (apt-get install -y nginx wrk)"; exit 2; }
done

work="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
UPSTREAM_PORT=$(port); NGINX_PORT=$(port); GATEWAY_PORT=$(port); PUBLIC_PORT=$(port)

cargo build --release --quiet --features gateway --bin jg-hmac
BIN="${CARGO_TARGET_DIR:-target}/release/jg-hmac"

mkdir -p "$work/nginx"
cat > "$work/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx; uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  keepalive_requests 1000000;
  upstream backend { server 127.0.0.1:$UPSTREAM_PORT; keepalive 128; }
  server { listen 127.0.0.1:$UPSTREAM_PORT; location / { return 200 "ok"; } }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
CONF
nginx -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)

umask 077
cat > "$work/credentials.toml" <<CONF
[[clients]]
id = "$CLIENT"
[[clients.keys]]
id = "k1"
secret = "$SECRET"
CONF
"$BIN" gateway --listen "127.0.0.1:$GATEWAY_PORT" --upstream "http://127.0.0.1:$UPSTREAM_PORT" \
  --credentials "$work/credentials.toml" --replay-capacity 4000000 2>"$work/gateway.log" &
pids+=($!)
# (d) the same gateway with the bench's route public: forwarding alone, no verification.
"$BIN" gateway --listen "127.0.0.1:$PUBLIC_PORT" --upstream "http://127.0.0.1:$UPSTREAM_PORT" \
  --credentials "$work/credentials.toml" --replay-capacity 1000 --public "GET /v1/balance" 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$GATEWAY_PORT/readyz" >/dev/null 2>&1 && curl -fs "http://127.0.0.1:$UPSTREAM_PORT/" >/dev/null 2>&1 && break
  sleep 0.1
done

# Signed once, just before the gateway's run (timestamps within its window); the same
# requests then go to nginx and the upstream directly.
python3 scripts/gateway-bench/presign.py "${JG_BENCH_LINES:-1500000}" "$CLIENT" "$SECRET" "$work/requests.tsv"

run() { # name port
  JG_BENCH_REQUESTS="$work/requests.tsv" JG_BENCH_CLIENT="$CLIENT" JG_BENCH_THREADS=$THREADS \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency \
    -s scripts/gateway-bench/requests.lua "http://127.0.0.1:$2" > "$work/$1.txt"
  python3 - "$1" "$work/$1.txt" <<'PY'
import re, sys
name, text = sys.argv[1], open(sys.argv[2]).read()
def ms(v):
    n, unit = re.match(r"([\d.]+)(us|ms|s)", v).groups()
    return float(n) * {"us": 0.001, "ms": 1, "s": 1000}[unit]
p50 = ms(re.search(r"50%\s+(\S+)", text).group(1))
p99 = ms(re.search(r"99%\s+(\S+)", text).group(1))
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors = re.search(r"Socket errors: (.*)", text)
print(f"{name}\t{rps:.0f}\t{p50:.3f}\t{p99:.3f}\t{bad.group(1) if bad else 0}\t{errors.group(1) if errors else '-'}")
PY
}

{
  run gateway "$GATEWAY_PORT"
  run nginx "$NGINX_PORT"
  run direct "$UPSTREAM_PORT"
  run public "$PUBLIC_PORT"
} > "$work/results.tsv"

python3 - "$work/results.tsv" <<'PY'
import sys
rows = {r[0]: r for r in (l.rstrip("\n").split("\t") for l in open(sys.argv[1]))}
n_rps, n_p99 = float(rows["nginx"][1]), float(rows["nginx"][3])
print("| path | requests/s | p50 ms | p99 ms | non-2xx | socket errors | vs nginx (rps, p99) |")
print("|---|---|---|---|---|---|---|")
labels = {"direct": "(a) direct to the upstream", "nginx": "(b) nginx proxy_pass",
          "gateway": "(c) jg-hmac gateway, verifying",
          "public": "(d) jg-hmac gateway, route --public (forwarding only)"}
for key in ("direct", "nginx", "gateway", "public"):
    name, rps, p50, p99, bad, err = rows[key]
    print(f"| {labels[key]} | {float(rps):.0f} | {p50} | {p99} | {bad} | {err} | "
          f"{float(rps) / n_rps:.2f}x, {float(p99) / n_p99:.2f}x |")
PY
# (Counted from the audit events: 0 with JG_HMAC_LOG=warn, which drops accepted ones.)
echo "requests the gateway accepted: $(grep -c 'outcome="accepted"' "$work/gateway.log" || true), refused: $(grep -c 'request refused' "$work/gateway.log" || true)"
