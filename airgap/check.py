"""Is everything on the mirror? Each job's manifest at its tag (at its pinned digest where it has one), every
platform of an index and every blob present; `deep` reads every blob back and hashes it. Reads the mirror, and
the site's own registry for what it provides itself (the vGPU guest driver): nothing upstream is asked, nothing
is written."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from airgap.oci import DigestMismatch, Job, Manifest, OciError, Reference, Registries, Registry, RegistryTarget

CHECK_RETRIES = 3  # a check reports a registry that does not answer rather than waiting on it long
Status = Literal["ok", "missing", "digest", "incomplete", "unreachable", "corrupt"]
STATUS_TEXT: dict[Status, str] = {
    "ok": "ok",
    "missing": "missing",
    "digest": "other digest",
    "incomplete": "incomplete",
    "unreachable": "unreachable",
    "corrupt": "corrupt",
}
REPAIR = "re-send it: run the same `paictl airgap mirror` or `import` with --repair"


@dataclass(frozen=True)
class Finding:
    """One job's verdict: `artifact` the source reference, `at` where the mirror should hold it."""

    artifact: str
    at: str
    status: Status
    detail: str = ""


class MirrorCheck:
    """Checks jobs against one mirror, and the artifacts a site provides itself where they are: every manifest and
    blob is asked for once per job (an index naming a platform twice costs one request), every blob (HEAD) in each
    repository that uses it and, when `deep`, read back and hashed once per registry however many images share it:
    one that does not hash to its digest is `corrupt`, one whose download broke off `unreachable`."""

    def __init__(self, registries: Registries, target: RegistryTarget, *, deep: bool):
        self.registries, self.target, self.deep = registries, target, deep
        self._lock = threading.Lock()
        self._reads: dict[tuple[str, str], Future[tuple[Status, str] | None]] = {}  # (host, digest) -> what is wrong

    def job(self, job: Job) -> Finding:
        return self._at(job, self.target.client, self.target.repo(job.path))

    def local(self, ref: Reference) -> Finding:
        """An artifact the site's own registry provides (the vGPU guest driver), checked at its reference."""
        try:
            return self._at(Job(ref, ref.path), self.registries.client(ref.host), ref.path)
        except OciError as exc:
            return Finding(str(ref), str(ref), "missing", f"its registry did not answer: {exc}")

    def _at(self, job: Job, client: Registry, repo: str) -> Finding:
        artifact, source, ref = str(job.source), job.source, job.ref
        at = f"{client.host}/{repo}" + (f":{ref}" if source.tag else f"@{ref}")
        top = client.get_manifest(repo, ref)
        if top is None:
            return Finding(artifact, at, "missing", "no manifest")
        if source.digest and top.digest != source.digest:
            return Finding(artifact, at, "digest", f"the registry has {top.digest}")
        problems = list(self._problems(client, repo, top, {top.digest}))
        if problems:
            kinds = {kind for kind, _ in problems}
            worst: Status = next(k for k in ("corrupt", "unreachable", "incomplete") if k in kinds)
            detail = "; ".join(text for _, text in problems) + (f"; {REPAIR}" if worst == "corrupt" else "")
            return Finding(artifact, at, worst, detail)
        return Finding(artifact, at, "ok", top.digest)

    def _problems(self, client: Registry, repo: str, manifest: Manifest,
                  seen: set[str]) -> Iterator[tuple[Status, str]]:
        """What is wrong under `manifest`; `seen`: the digests this job already visited (each is asked once)."""
        for desc in manifest.blobs():
            digest = str(desc["digest"])
            if digest in seen:
                continue
            seen.add(digest)
            if not client.has_blob(repo, digest):
                yield "incomplete", f"blob {digest} missing"
            elif self.deep and (wrong := self._read_back(client, repo, digest, int(desc["size"]))):
                yield wrong
        for desc in manifest.children():
            if desc["digest"] in seen:
                continue
            seen.add(desc["digest"])
            child = client.get_manifest(repo, str(desc["digest"]))
            if child is None:
                platform = desc.get("platform", {})
                yield "incomplete", (f"platform {platform.get('os', '?')}/{platform.get('architecture', '?')} "
                                     f"{desc['digest']} missing")
            else:
                yield from self._problems(client, repo, child, seen)

    def _read_back(self, client: Registry, repo: str, digest: str, size: int) -> tuple[Status, str] | None:
        with self._lock:
            read = self._reads.get((client.host, digest))
            mine = read is None
            if read is None:
                read = self._reads[(client.host, digest)] = Future()
        if mine:
            try:
                for _ in client.blob_chunks(repo, digest, size):
                    pass
                read.set_result(None)
            except DigestMismatch as exc:
                read.set_result(("corrupt", str(exc)))
            except OciError as exc:
                read.set_result(("unreachable", f"blob {digest} could not be read back: {exc}"))
            except BaseException as exc:
                read.set_exception(exc)
        return read.result()


def check(jobs: list[Job], destination: str, *, local: list[Reference] | None = None, plain_http: bool = False,
          authfile: Path | None = None, deep: bool = False, workers: int = 8,
          ca_file: Path | None = None) -> list[Finding]:
    """A finding per job, in the jobs' order, then one per `local` reference (checked in its own registry)."""
    registries = Registries(plain_http=plain_http, authfile=authfile, retries=CHECK_RETRIES, ca_file=ca_file)
    try:
        checker = MirrorCheck(registries, RegistryTarget(destination, registries), deep=deep)
        with ThreadPoolExecutor(workers, thread_name_prefix="check") as pool:
            return list(pool.map(checker.job, jobs)) + list(pool.map(checker.local, local or []))
    finally:
        registries.close()


def to_table(findings: list[Finding]) -> str:
    width = max((len(f.artifact) for f in findings), default=8)
    lines = [f"{'ARTIFACT':<{width}}  {'STATUS':<12}  DETAIL"]
    lines += [f"{f.artifact:<{width}}  {STATUS_TEXT[f.status]:<12}  {f.detail}" for f in findings]
    return "\n".join(lines) + "\n" + summary(findings) + "\n"


def to_json(findings: list[Finding]) -> str:
    body: dict[str, Any] = {"ok": all(f.status == "ok" for f in findings),
                            "findings": [asdict(f) for f in findings]}
    return json.dumps(body, indent=2) + "\n"


def summary(findings: list[Finding]) -> str:
    counts = {status: sum(1 for f in findings if f.status == status) for status in STATUS_TEXT}
    return f"{len(findings)} artifacts: " + ", ".join(
        f"{n} {STATUS_TEXT[status]}" for status, n in counts.items() if n or status == "ok")
