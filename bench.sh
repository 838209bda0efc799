#!/usr/bin/env bash
# Install (first time) and run the benchmark suite; `./bench.sh --mosquitto` for the full-size run on Mosquitto.
set -euo pipefail
cd "$(dirname "$0")"
source deploy/bootstrap.sh
exec .venv/bin/python -m bench "$@"
