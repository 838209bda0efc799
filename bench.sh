#!/usr/bin/env bash
# Install (first time) and run the benchmark suite; `./bench.sh --mosquitto` for the full-size run on Mosquitto.
set -euo pipefail
cd "$(dirname "$0")"
source deploy/bootstrap.sh
# The bench extra (gmqtt, a bare reference only the bench uses) is not part of the gateway or its tests.
.venv/bin/python -c "import gmqtt" 2>/dev/null || .venv/bin/python -m pip install --quiet -e ".[test,bench]"
exec .venv/bin/python -m bench "$@"
