"""Pin a bill of materials by digest: each reference's tag resolved on its own registry (the connected side,
before mirroring), or where it lands on a mirror (the site, to record what it holds)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from airgap.bom import DIGEST, Bom
from airgap.mirror import bom_jobs
from airgap.oci import Job, OciError, Registries, RegistryTarget


def resolve(bill: Bom, *, on: str | None = None, plain_http: bool = False, authfile: Path | None = None,
            workers: int = 8, ca_file: Path | None = None) -> tuple[Bom, list[str]]:
    """The bill with every reference it can resolve pinned to its digest, and one line per reference that could
    not be (the reference and why). `on`: REGISTRY[/prefix] of a mirror to ask instead of each reference's own
    registry; a chart from a classic Helm repository resolves only there (it becomes OCI when mirrored)."""
    registries = Registries(plain_http=plain_http, authfile=authfile, ca_file=ca_file)
    target = RegistryTarget(on, registries) if on else None

    def digest(job: Job) -> str | None:
        if target is not None:
            return target.client.manifest_digest(target.repo(job.path), job.ref)
        if job.chart_repo:
            raise OciError("a classic Helm repository chart has no digest before it is mirrored")
        return registries.client(job.source.host).manifest_digest(job.source.path, job.ref)

    def one(item: tuple[str, Job]) -> tuple[str, str | None, str]:
        ref, job = item
        try:
            found = digest(job)
        except OciError as exc:
            return ref, None, str(exc)
        return ref, found, "" if found else f"no manifest at {job.ref}"

    pending = {ref: job for ref, job in bom_jobs(bill).items() if DIGEST not in ref}
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="resolve") as pool:
            results = list(pool.map(one, pending.items()))
    finally:
        registries.close()
    where = f" on {on}" if on else ""
    failed = [f"{ref}: not resolved{where}: {why}" for ref, found, why in results if found is None]
    return bill.pinned({ref: found for ref, found, _ in results if found}), failed
