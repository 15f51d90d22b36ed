"""Fixtures for the end-to-end tests: a real API server from .tools/bin (built by scripts/tools.sh), one per
module. Without the tools the tests skip, naming the script that builds them; scripts/e2e.sh builds them first."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cluster import ApiServer, tools_missing

REQUIRED = ("etcd", "kube-apiserver")


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[ApiServer]:
    """etcd + kube-apiserver on loopback; the non-admin identity is in the groups the module's TENANT_GROUPS
    names."""
    missing = tools_missing(*REQUIRED)
    if missing:
        pytest.skip(f"{', '.join(missing)} not in .tools/bin: run scripts/tools.sh (scripts/e2e.sh does)")
    server = ApiServer(tmp_path_factory.mktemp("apiserver"),
                       tenant_groups=tuple(getattr(request.module, "TENANT_GROUPS", ()))).start()
    yield server
    server.stop()
