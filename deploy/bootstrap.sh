#!/usr/bin/env bash
# Creates .venv and installs the project (with test tools) from the repo's own files, once and
# again whenever pyproject.toml changes. Sourced by run.sh, test.sh and .ci/run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
STAMP="$VENV/.installed"
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; then
    # Explicit checks: errexit does not apply when the caller sources this inside an && list.
    "$VENV/bin/python" -m pip install --quiet --upgrade pip || { echo "bootstrap: pip upgrade failed" >&2; exit 1; }
    "$VENV/bin/python" -m pip install --quiet -e "$ROOT[test]" || { echo "bootstrap: install failed" >&2; exit 1; }
    touch "$STAMP"
fi
