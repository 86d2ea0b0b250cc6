#!/usr/bin/env bash
# `make run`: serve manifests/examples with two demo backends.
#   contrib/demo.sh <albd-binary>
#   contrib/demo.sh --certs-only    only generate the certificate (make validate-examples)
# Generates manifests/examples/certs/demo.pem + demo.key (self-signed,
# localhost/127.0.0.1, key 0600) if missing, starts python3 demo backends on
# 127.0.0.1:8081 and :8082, runs albd in the foreground (admin endpoint on
# 127.0.0.1:9901) and stops the backends when albd exits.
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 <albd-binary> | --certs-only" >&2
  exit 64
fi
CERTS_ONLY=0
if [[ "$1" == "--certs-only" ]]; then
  CERTS_ONLY=1
else
  ALBD=$(realpath "$1")
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
EXAMPLES="$ROOT/manifests/examples"
CERTS="$EXAMPLES/certs"

if [[ ! -s "$CERTS/demo.pem" || ! -s "$CERTS/demo.key" ]]; then
  mkdir -p "$CERTS"
  (
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 \
      -keyout "$CERTS/demo.key" -out "$CERTS/demo.pem" -subj "/CN=localhost" \
      -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      -addext "basicConstraints=critical,CA:FALSE" -addext "extendedKeyUsage=serverAuth" 2>/dev/null
  )
  chmod 600 "$CERTS/demo.key"
  chmod 644 "$CERTS/demo.pem"
  echo "demo: generated a self-signed certificate in $CERTS" >&2
fi
if [[ $CERTS_ONLY == 1 ]]; then
  exit 0
fi

BACKENDS=()
stop_backends() {
  local p
  for p in "${BACKENDS[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${BACKENDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  BACKENDS=()
}
trap stop_backends EXIT

for port in 8081 8082; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "demo: 127.0.0.1:$port is already in use; stop what listens there first" >&2
    exit 1
  fi
  python3 "$ROOT/contrib/demo_backend.py" "$port" &
  BACKENDS+=($!)
done

# Wait (bounded) until both backends accept, so the first request finds them.
for port in 8081 8082; do
  for _ in $(seq 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
done

echo "demo: backends on 127.0.0.1:8081 and :8082; albd admin on http://127.0.0.1:9901/readyz" >&2
echo "demo: try  curl -k https://localhost:8443/   or   curl http://localhost:8080/   (Ctrl-C stops)" >&2
# albd runs in the foreground; Ctrl-C reaches it (same process group) and it
# drains and exits; SIGTERM to this script is passed on.
"$ALBD" run -m "$EXAMPLES" --admin 127.0.0.1:9901 &
ALBD_PID=$!
trap 'kill -TERM "$ALBD_PID" 2>/dev/null || true' TERM INT
status=0
wait "$ALBD_PID" || status=$?
# wait returns early when a trapped signal arrives: wait for albd itself.
while kill -0 "$ALBD_PID" 2>/dev/null; do
  wait "$ALBD_PID" || status=$?
done
exit "$status"
