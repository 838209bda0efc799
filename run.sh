#!/usr/bin/env bash
# Install (first time) and run the gateway: `./run.sh` runs it on the embedded defaults;
# `./run.sh demo`, `./run.sh run --broker mqtt://127.0.0.1:1883`, … pass through to `gateway`.
set -euo pipefail
cd "$(dirname "$0")"
source deploy/bootstrap.sh
if [ "$#" -eq 0 ]; then set -- run; fi
exec .venv/bin/gateway "$@"
