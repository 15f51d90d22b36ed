#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what the tests need, then lint, types and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/system-deps.sh
./scripts/bootstrap.sh
./scripts/tools.sh helm  # the e2e tools (scripts/e2e.sh) only when named
echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy
echo "== layers (imports one way: components -> validation -> program -> airgap -> models -> paictl)"
.venv/bin/lint-imports --no-cache
echo "== pytest"
.venv/bin/python -m pytest "$@"
