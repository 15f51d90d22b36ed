"""Installed Helm releases, read through pyhelm3 with helm itself (helm decodes its own release storage): name,
namespace, chart, version, status and the values each release was installed with. Also where helm is found,
for every command that drives it: the binary scripts/tools.sh builds, else `helm` on PATH."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

from pyhelm3 import Client, errors
from pyhelm3.models import Release

from validation.facts import ReleaseFacts

TOOLS_HELM = Path(__file__).resolve().parents[2] / ".tools" / "bin" / "helm"

T = TypeVar("T")


class HelmMissing(Exception):
    """No helm binary: neither .tools/bin/helm (scripts/tools.sh) nor `helm` on PATH."""


class HelmError(Exception):
    """helm could not read the releases (kubeconfig, cluster unreachable, permissions), with helm's message."""


def helm_client(kubeconfig: Path | None = None, context: str | None = None) -> Client:
    """pyhelm3's client over the helm scripts/tools.sh built, else `helm` on PATH."""
    found = str(TOOLS_HELM) if TOOLS_HELM.exists() else shutil.which("helm")
    if not found:
        raise HelmMissing("helm not found: run scripts/tools.sh (builds .tools/bin/helm) or put helm on PATH")
    return Client(executable=found, kubeconfig=kubeconfig, kubecontext=context)


async def every_helm_run(runs: list[Awaitable[T]]) -> list[T]:
    """The results of concurrent helm runs, each left to finish, then the first failure raised. asyncio.gather
    alone would cancel the others on a failure, and pyhelm3 waits on a cancelled helm that can hang for ever."""
    results = await asyncio.gather(*runs, return_exceptions=True)
    failed = next((r for r in results if isinstance(r, BaseException)), None)
    if failed is not None:
        raise failed
    return [r for r in results if not isinstance(r, BaseException)]


def read_releases(kubeconfig: Path | None = None, context: str | None = None) -> list[ReleaseFacts]:
    """The latest revision of every release in every namespace (deployed, failed or in progress)."""
    client = helm_client(kubeconfig, context)

    async def one(release: Release) -> ReleaseFacts:
        revision = await release.current_revision()
        chart = await revision.chart_metadata()
        return ReleaseFacts(origin="cluster", name=release.name, namespace=release.namespace, chart=chart.name,
                            version=chart.version, status=revision.status.value, values=await revision.values())

    async def read() -> list[ReleaseFacts]:
        releases = await client.list_releases(all_namespaces=True, include_failed=True, include_pending=True,
                                              include_uninstalling=True)
        return await every_helm_run([one(r) for r in releases])

    try:
        found = asyncio.run(read())
    except errors.Error as exc:
        lines = exc.stderr.decode(errors="replace").strip().splitlines() or [f"exit {exc.returncode}"]
        raise HelmError(f"helm releases of {kubeconfig or 'the default kubeconfig'}: {lines[-1]}") from None
    return sorted(found, key=lambda r: (r.namespace, r.name))
