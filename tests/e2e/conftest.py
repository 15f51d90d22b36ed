"""Fixtures for the end-to-end tests: a real API server from .tools/bin (built by scripts/tools.sh), one per
module. Without the tools the tests skip, naming the script that builds them; scripts/e2e.sh builds them first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from registries import RegistryProcess

from airgap.oci import Registry
from e2e.charts import push_stand_ins
from e2e.cluster import SERVER_TOOLS, ApiServer, Authority, require_tools


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[ApiServer]:
    """etcd + kube-apiserver on loopback; the non-admin identity is in the groups the module's TENANT_GROUPS
    names."""
    require_tools(*SERVER_TOOLS)
    server = ApiServer(tmp_path_factory.mktemp("apiserver"),
                       tenant_groups=tuple(getattr(request.module, "TENANT_GROUPS", ()))).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def chart_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A TLS docker-registry with the stand-in charts under mirror/charts; (host, CA file). Helm's OCI client
    speaks only HTTPS: the CA is trusted through SSL_CERT_FILE, here and in the engine's processes."""
    root = tmp_path_factory.mktemp("charts")
    ca = Authority(root / "pki")
    serving = ca.issue("registry", "127.0.0.1", server=True)
    tls = {"certificate": str(serving.cert), "key": str(serving.key)}
    registry = RegistryProcess(root / "registry", tls=tls).start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_CERT_FILE", str(ca.ca_file))
        try:
            push_stand_ins(Registry(registry.host), "mirror")
            yield registry.host, ca.ca_file
        finally:
            registry.stop()
