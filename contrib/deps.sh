#!/usr/bin/env bash
# Installs every Debian package albd needs to build, test and benchmark.
# Idempotent: packages already present are not fetched again, and apt-get
# update runs only when something is missing.
#   contrib/deps.sh          build + test dependencies
#   contrib/deps.sh --build  build dependencies only (contrib/Dockerfile)
#   contrib/deps.sh --bench  also nginx, haproxy, h2o, wrk, ab (apache2-utils) and
#                            testssl.sh for bench/ and ../shared/bench
set -euo pipefail

pkgs=(
  # build
  build-essential cmake pkg-config
  libssl-dev libuv1-dev node-llhttp libnghttp2-dev zlib1g-dev libbrotli-dev
  libyaml-dev libjansson-dev
  libcurl4-openssl-dev   # the certificate-service client only (agent/certsvc.c)
)
[[ "${1:-}" == "--build" ]] || pkgs+=(
  libcmocka-dev
  # test tools
  curl openssl python3 nghttp2-client strace
  # compression tests decode Brotli with the brotli command (python3 zlib does gzip)
  brotli
  # contrib/k8s checks: the Kubernetes API models (its OpenAPI schema) and YAML
  python3-yaml python3-kubernetes
)
if [[ "${1:-}" == "--bench" ]]; then
  pkgs+=(nginx-light haproxy h2o wrk apache2-utils testssl.sh)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
