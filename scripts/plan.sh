#!/usr/bin/env bash
# The main job with no cluster at hand: the offline plan of a stack (default: dev).
#   ./scripts/plan.sh                      the dev plan as a component tree
#   ./scripts/plan.sh vks-prod --format json --out plan-out
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
stack=${1:-dev}
shift || true
exec .venv/bin/paictl plan --stack "$stack" "$@"
