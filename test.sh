#!/usr/bin/env bash
# Install (first time) and run the whole test suite; extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
source deploy/bootstrap.sh
exec .venv/bin/python -m pytest "$@"
