#!/usr/bin/env bash
# Install everything the tests need that is not a Python package:
#   Prometheus 2.42 + promtool, Alertmanager 0.25 + amtool (Debian packages),
#   Chromium (headless status-page and SDK tests), ffmpeg and Node/npm (the player
#   SDK, sdk/web, and its browser test), docker-compose and kubectl (to validate
#   docker-compose.yml and render deploy/kubernetes), Java + Maven and the Apache
#   Kafka broker jars (Maven Central, cached under ~/.cache/streamslo), curl.
# Needs root (apt-get). Idempotent and quick: installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v amtool >/dev/null || need+=(prometheus-alertmanager)
command -v chromium >/dev/null || need+=(chromium)
command -v ffmpeg >/dev/null || need+=(ffmpeg)  # the SDK browser test makes its video
command -v npm >/dev/null || need+=(nodejs npm)  # the player SDK (sdk/web); needs Node >= 20.19
command -v docker-compose >/dev/null || need+=(docker-compose)  # validates docker-compose.yml, no engine needed
command -v java >/dev/null || need+=(default-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v kubectl >/dev/null || need+=(kubernetes-client)  # `kubectl kustomize deploy/kubernetes`
command -v curl >/dev/null || need+=(curl)  # the README's curl example
if ((${#need[@]})); then
  echo "install-deps: apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  # The Debian units start the daemons on install; tests start their own.
  systemctl stop prometheus prometheus-alertmanager prometheus-node-exporter 2>/dev/null || true
  pkill -x prometheus-node-exporter 2>/dev/null || true
fi

if [[ -f scripts/kafka.py ]]; then
  python scripts/kafka.py fetch
fi
echo "install-deps: ok"
