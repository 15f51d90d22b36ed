#!/usr/bin/env bash
# End to end: builds or reuses the pinned tools (scripts/tools.sh), then runs tests/e2e: a real etcd and
# kube-apiserver on loopback, every object of every bundled stack admitted by it, tenant RBAC for a non-admin
# identity, and the program under the real engine (Automation API, file backend, real secrets): preview, up, a
# preview with no changes, an add-only update, destroy; with pai:supervisor, the Cluster created and updated in place on
# the same server as the Supervisor (readiness faked by the test: no VKS controller). Ends with pytest's summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
./scripts/bootstrap.sh
./scripts/tools.sh
echo "== e2e (tools ready after $((SECONDS - start))s)"
.venv/bin/python -m pytest tests/e2e -p no:cacheprovider -rs "$@"
