"""Portable air-gap bundles: an OCI image layout inside a tar, every blob stored once, with an index
(pai-bundle.json) of the images it holds and the sha256 of every file.

Export stages the layout in `BUNDLE.tar.staging/` beside the tar (each blob downloaded to `.<hex>.partial`,
fsynced, renamed), so an interrupted export run again fetches only the blobs still missing, and a blob cut short
resumes where it stopped. Given a key, export signs the index (`pai-bundle.json.sig`, see airgap.signing).

Import trusts nothing in the tar: before the first byte is pushed it checks the signature (given a key), every
file against the index, the index's own shape (digests, paths, sizes), the pinned digests (given a list), and
the whole manifest graph (every manifest and blob each image reaches is in the tar, or left to a base bundle
this machine imported to the same target), then pushes only what the target lacks.

A delta bundle (export `since` an earlier bundle) leaves out the configs and layers the earlier one holds: its
index names that bundle and, for each blob left to it, a repository it lands in, which the import mounts from,
only if this machine's import of that base created the repository under the same --to (recorded per import in
the state folder, $PAICTL_STATE_DIR, else $XDG_STATE_HOME/paictl, else ~/.local/state/paictl).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import tarfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airgap.helmrepo import ClassicCharts
from airgap.mirror import TerminalProgress
from airgap.oci import (
    CHUNK,
    MAX_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    REPO_PATH,
    BadInput,
    Chunk,
    Copier,
    DigestMismatch,
    Job,
    Manifest,
    OciError,
    Reference,
    Registries,
    RegistryTarget,
    Repo,
    Stats,
    checked_digest,
    sha256_digest,
)

INDEX_FILE = "pai-bundle.json"
SIGNATURE_FILE = "pai-bundle.json.sig"
FORMAT = "pai-airgap-bundle/v1"
REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
MAX_INDEX = 64 << 20  # pai-bundle.json and index.json: read whole, so bounded
BLOB_FILE = re.compile(r"blobs/sha256/[0-9a-f]{64}")


class BundleError(OciError):
    """A bundle that is missing or altered; the message names the file or blob."""


class MalformedBundle(BundleError, BadInput):
    """A bundle whose index or layout is not what export writes: refused before anything is pushed."""


def _blob_path(root: Path, digest: str) -> Path:
    """Where a blob lives under `root`; only a sha256:<64 hex> digest makes a path (never one outside root)."""
    return root / "blobs" / "sha256" / checked_digest(digest, str(root)).removeprefix("sha256:")


def _write_atomic(path: Path, chunks: Iterable[Chunk]) -> None:
    """Write to a temporary name beside `path`, fsync, rename: a reader sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        with open(tmp, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class Base:
    """An earlier bundle a delta leaves blobs to: its file name, the sha256 of its index, and for each config and
    layer it holds (or leaves to its own base) a repository the blob lands in on import."""

    name: str
    sha256: str
    homes: dict[str, str]


def read_base(path: Path) -> Base:
    """The blobs an earlier bundle carries to a site, read from its manifests (the tar's files are not hashed here:
    its import did that)."""
    source = BundleSource(path)
    source.check_graph()
    homes = dict(source.base_homes)
    for job in source.jobs():
        for manifest in _manifests([job.ref], _loader(source, job)):
            homes.update({str(d["digest"]): job.path for d in manifest.blobs() if str(d["digest"]) not in homes})
    return Base(path.name, hashlib.sha256(source.listing_bytes).hexdigest(), homes)


def _loader(source: BundleSource, job: Job) -> Callable[[str], Manifest]:
    """A job's manifests out of a bundle, by tag or digest; one it lists but lacks is an altered bundle."""
    def load(ref: str) -> Manifest:
        found = source.manifest(Repo(None, job.path), ref)
        if found is None:
            raise BundleError(f"{source.path}: {job.path}:{job.ref} is listed but its manifest is missing")
        return found
    return load


class LayoutTarget:
    """A `Target` writing an OCI image layout directory; tags become index.json entries named path:tag (and a
    ref "@sha256:..." an entry named path@sha256:...). Blobs in `leave` (a delta's base holds them) are not
    written. A blob is downloaded to `.<hex>.partial` and renamed once whole: a later run resumes a partial one."""

    def __init__(self, root: Path, leave: frozenset[str] = frozenset()):
        self.root, self.leave = root, leave
        self.entries: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        for stale in root.glob("blobs/sha256/.*.part"):
            stale.unlink()

    def has_manifest(self, repo: str, ref: str, digest: str) -> bool:
        return ref.startswith("sha256:") and self.has_blob(repo, digest)

    def put_manifest(self, repo: str, ref: str, manifest: Manifest) -> bool:
        if not self.has_blob(repo, manifest.digest):
            _write_atomic(_blob_path(self.root, manifest.digest), [manifest.data])
        if not ref.startswith("sha256:"):
            name = f"{repo}{ref}" if ref.startswith("@") else f"{repo}:{ref}"
            entry = {"mediaType": manifest.media_type or manifest.body.get("mediaType", OCI_MANIFEST),
                     "digest": manifest.digest, "size": len(manifest.data), "annotations": {REF_NAME: name}}
            with self._lock:
                self.entries[name] = entry
        return False

    def has_blob(self, repo: str, digest: str) -> bool:
        return _blob_path(self.root, digest).is_file()

    def ensure_blob(self, repo: str, digest: str, size: int, chunks: Callable[[Path | None], Iterable[Chunk]],
                    from_repo: str) -> str:
        if digest in self.leave or self.has_blob(repo, digest):
            return "skipped"
        path = _blob_path(self.root, digest)
        partial = path.with_name(f".{path.name}.partial")
        if partial.exists() and partial.stat().st_size > size:
            partial.unlink()
        try:
            with open(partial, "ab") as out:
                for chunk in chunks(partial if out.tell() else None):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except DigestMismatch:
            partial.unlink(missing_ok=True)  # the bytes kept did not belong to the blob: the next run starts over
            raise
        os.replace(partial, path)
        return "moved"


def staging_folder(out: Path) -> Path:
    """Where an export of `out` keeps what it fetched until the tar is written."""
    return out.with_name(out.name + ".staging")


def export(jobs: list[Job], out: Path, *, plain_http: bool = False, authfile: Path | None = None,
           workers: int = 8, progress: TerminalProgress | None = None, since: Path | None = None,
           sign_key: Path | None = None, ca_file: Path | None = None) -> Stats:
    """Copy every job into the bundle `out` (a tar); blobs already staged by an earlier run are not fetched, nor,
    given the bundle `since`, the configs and layers it holds. `sign_key`: a PEM EC P-256 private key to sign the
    bundle's index with."""
    from airgap import signing

    if out.is_dir():
        raise BadInput(f"--out {out} is a folder: name the bundle tar to write in it, e.g. {out / 'pai.tar'}")
    if not out.parent.is_dir():
        raise BadInput(f"--out {out}: the folder {out.parent} does not exist")
    key = signing.load_private_key(sign_key) if sign_key else None
    base = read_base(since) if since else None
    staging = staging_folder(out)
    (staging / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    registries = Registries(plain_http=plain_http, authfile=authfile, ca_file=ca_file)
    target = LayoutTarget(staging, frozenset(base.homes) if base else frozenset())
    source = ClassicCharts(registries, jobs, plain_http=plain_http)
    try:
        stats = Copier(source, target, workers=workers, progress=progress).run(jobs)
    finally:
        source.close()
        registries.close()
    for job in jobs:
        if not job.source.tag:
            target.put_manifest(job.path, "@" + stats.results[str(job.source)], Manifest(
                _blob_path(staging, stats.results[str(job.source)]).read_bytes(), ""))
    images = [{"source": str(job.source), "path": job.path, "ref": job.ref, "digest": stats.results[str(job.source)]}
              for job in jobs]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": sorted(
        target.entries.values(), key=lambda e: str(e["annotations"][REF_NAME]))}
    _write_atomic(staging / "oci-layout", [LAYOUT])
    _write_atomic(staging / "index.json", [json.dumps(index, indent=1).encode()])
    files = {"oci-layout": _describe(LAYOUT), "index.json": _describe((staging / "index.json").read_bytes())}
    left: dict[str, str] = {}
    for blob in _reachable(staging, index):
        if base and blob in base.homes:
            left[blob] = base.homes[blob]
            continue
        files[f"blobs/sha256/{blob.removeprefix('sha256:')}"] = {
            "sha256": blob.removeprefix("sha256:"), "size": _blob_path(staging, blob).stat().st_size}
    body: dict[str, Any] = {"format": FORMAT, "images": images, "files": files}
    if base:
        body["base"] = {"bundle": base.name, "sha256": base.sha256, "blobs": left}
    listing = json.dumps(body, indent=1, sort_keys=True).encode()
    _write_atomic(staging / INDEX_FILE, [listing])
    signed = [SIGNATURE_FILE] if key else []
    if key:
        _write_atomic(staging / SIGNATURE_FILE, [signing.sign(listing, key)])
    _write_tar(staging, out, [INDEX_FILE, *signed, *sorted(files)])
    shutil.rmtree(staging)
    return stats


def _describe(data: bytes) -> dict[str, Any]:
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}


def _manifests(tops: Iterable[str], load: Callable[[str], Manifest]) -> Iterator[Manifest]:
    """Each manifest reachable from `tops` (tags or digests), once: the tops and the platforms of every index."""
    seen: set[str] = set()
    pending = list(tops)
    while pending:
        digest = pending.pop()
        if digest in seen:
            continue
        seen.add(digest)
        manifest = load(digest)
        pending += [str(d["digest"]) for d in manifest.children()]
        yield manifest


def _reachable(root: Path, index: dict[str, Any]) -> set[str]:
    """Every blob the index reaches (manifests, platforms, configs, layers): what the tar carries."""
    seen: set[str] = set()
    tops = [str(e["digest"]) for e in index["manifests"]]
    for manifest in _manifests(tops, lambda digest: Manifest(_blob_path(root, digest).read_bytes(), "")):
        seen.add(manifest.digest)
        seen.update(str(d["digest"]) for d in manifest.blobs())
    return seen


def _write_tar(staging: Path, out: Path, names: list[str]) -> None:
    tmp = out.with_name(f".{out.name}.part")
    with open(tmp, "wb") as raw:
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in names:
                path = staging / name
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = path.stat().st_size, 0o644, 0
                with open(path, "rb") as f:
                    tar.addfile(info, f)
        raw.flush()
        os.fsync(raw.fileno())
    os.replace(tmp, out)


@dataclass(frozen=True)
class _Member:
    offset: int
    size: int


class BundleSource:
    """A `Source` reading blobs straight out of a bundle tar, verified as they are read. Opening it checks the
    index's shape: every digest sha256:<64 hex>, every path a repository path, every file name one export writes."""

    def __init__(self, path: Path):
        self.path = path
        try:
            with tarfile.open(path, mode="r:") as tar:
                self.members = {m.name: _Member(m.offset_data, m.size) for m in tar.getmembers() if m.isfile()}
        except (OSError, tarfile.TarError) as exc:
            raise MalformedBundle(f"{path}: not a readable bundle tar ({exc})") from exc
        if INDEX_FILE not in self.members or "index.json" not in self.members:
            raise MalformedBundle(f"{path}: not a paictl air-gap bundle (no {INDEX_FILE} or index.json)")
        self.listing_bytes = self._read(INDEX_FILE, MAX_INDEX)
        self.listing = self._json(INDEX_FILE, self.listing_bytes)
        if self.listing.get("format") != FORMAT:
            raise MalformedBundle(f"{path}: {INDEX_FILE} format {str(self.listing.get('format'))[:80]!r}, "
                                  f"expected {FORMAT}")
        self.index = self._json("index.json", self._read("index.json", MAX_INDEX))
        try:
            self.by_name = {str(e["annotations"][REF_NAME]): checked_digest(e["digest"], f"{path}: index.json")
                            for e in self.index["manifests"]}
            self.images = [self._image(image) for image in self.listing["images"]]
            self.files: dict[str, dict[str, Any]] = {str(name): self._file(str(name), entry)
                                                     for name, entry in self.listing["files"].items()}
            base = self.listing.get("base") or {}
            self.base_name: str = str(base.get("bundle", ""))
            self.base_sha256: str = str(base.get("sha256", ""))
            # blobs left to the base: where they land
            self.base_homes: dict[str, str] = {checked_digest(d, f"{path}: base.blobs"): self._repo_path(home)
                                               for d, home in base.get("blobs", {}).items()}
        except (KeyError, TypeError, AttributeError) as exc:
            raise MalformedBundle(f"{path}: {INDEX_FILE} or index.json lacks or mistypes {exc}") from exc
        except BadInput as exc:
            raise MalformedBundle(str(exc)) from exc

    @property
    def signature(self) -> bytes | None:
        return self._read(SIGNATURE_FILE, 4096) if SIGNATURE_FILE in self.members else None

    def _json(self, name: str, data: bytes) -> dict[str, Any]:
        try:
            parsed = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MalformedBundle(f"{self.path}: {name} is not JSON ({exc})") from exc
        if not isinstance(parsed, dict):
            raise MalformedBundle(f"{self.path}: {name} is not a JSON object")
        return parsed

    def _repo_path(self, value: object) -> str:
        if isinstance(value, str) and REPO_PATH.fullmatch(value):
            return value
        raise MalformedBundle(f"{self.path}: {str(value)[:100]!r} is not a repository path")

    def _image(self, image: dict[str, Any]) -> dict[str, str]:
        try:
            Reference.parse(str(image["source"]))
        except ValueError as exc:
            raise MalformedBundle(f"{self.path}: {INDEX_FILE} images: {exc}") from exc
        return {"source": str(image["source"]), "path": self._repo_path(image["path"]), "ref": str(image["ref"]),
                "digest": checked_digest(image["digest"], f"{self.path}: {INDEX_FILE} images")}

    def _file(self, name: str, entry: dict[str, Any]) -> dict[str, Any]:
        if name not in ("oci-layout", "index.json") and not BLOB_FILE.fullmatch(name):
            raise MalformedBundle(f"{self.path}: {INDEX_FILE} lists {name[:100]!r}, not a file a bundle holds")
        if not isinstance(entry["size"], int) or not re.fullmatch(r"[0-9a-f]{64}", str(entry["sha256"])):
            raise MalformedBundle(f"{self.path}: {INDEX_FILE} files.{name}: size or sha256 malformed")
        return entry

    def _read(self, name: str, limit: int) -> bytes:
        if self.members[name].size > limit:
            raise MalformedBundle(f"{self.path}: {name} is {self.members[name].size} bytes, more than {limit}")
        return b"".join(self._chunks(name))

    def _chunks(self, name: str) -> Iterator[Chunk]:
        member = self.members[name]
        with open(self.path, "rb") as f:
            f.seek(member.offset)
            left = member.size
            while left:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    raise BundleError(f"{self.path}: {name} is cut short")
                left -= len(chunk)
                yield chunk

    def verify(self) -> None:
        """Every file the index lists is present with its sha256 and size, and nothing else is in the tar."""
        extra = set(self.members) - set(self.files) - {INDEX_FILE, SIGNATURE_FILE}
        if extra:
            raise BundleError(f"{self.path}: files not in {INDEX_FILE}: {', '.join(sorted(extra))[:300]}")
        for name, expected in sorted(self.files.items()):
            label = "blob sha256:" + name.rsplit("/", 1)[-1] if name.startswith("blobs/") else name
            if name not in self.members:
                raise BundleError(f"{self.path}: {label} is missing")
            hasher = hashlib.sha256()
            for chunk in self._chunks(name):
                hasher.update(chunk)
            if self.members[name].size != expected["size"] or hasher.hexdigest() != expected["sha256"]:
                raise BundleError(f"{self.path}: {label} was altered: its content hashes to sha256:"
                                  f"{hasher.hexdigest()}, the bundle index says sha256:{expected['sha256']}")
            if name.startswith("blobs/sha256/") and expected["sha256"] != name.rsplit("/", 1)[-1]:
                raise BundleError(f"{self.path}: {label} is listed with sha256:{expected['sha256']}")

    def check_graph(self) -> None:
        """Every image's tag names its digest in index.json, and every manifest, platform, config and layer it
        reaches (and every entry of index.json: the referrers' fallback tags) is in the tar with the size its
        descriptor declares, or left to the base bundle: found before anything is pushed, not mid-push."""
        for image in self.images:
            name = f"{image['path']}:{image['ref']}" if not image["ref"].startswith("sha256:") else None
            if name and self.by_name.get(name) != image["digest"]:
                raise MalformedBundle(f"{self.path}: {image['source']} is listed at {image['digest']}, index.json "
                                      f"names {self.by_name.get(name, 'nothing')} at {name}")
        pending: list[tuple[str, str, int | None]] = [(self.by_name[str(e["annotations"][REF_NAME])],
                                                       "index.json", e.get("size")) for e in self.index["manifests"]]
        pending += [(image["digest"], image["source"], None) for image in self.images]
        seen: set[str] = set()
        while pending:
            digest, parent, size = pending.pop()
            if digest in seen:
                continue
            seen.add(digest)
            manifest = self._manifest_file(digest, parent, size)
            try:
                blobs, children = manifest.blobs(), manifest.children()
            except BadInput as exc:
                raise MalformedBundle(str(exc)) from exc
            for desc in blobs:
                self._check_blob(str(desc["digest"]), int(desc["size"]), digest)
            pending += [(str(d["digest"]), f"index {digest}", int(d["size"])) for d in children]

    def _manifest_file(self, digest: str, parent: str, size: int | None) -> Manifest:
        name = _member_name(digest)
        if name not in self.members:
            raise MalformedBundle(f"{self.path}: manifest {digest} (of {parent}) is not in the bundle")
        if size is not None and self.members[name].size != size:
            raise MalformedBundle(f"{self.path}: manifest {digest} is {self.members[name].size} bytes, {parent} "
                                  f"says {size}")
        data = self._read(name, MAX_MANIFEST)
        if sha256_digest(data) != digest:
            raise BundleError(f"{self.path}: manifest {digest} was altered")
        return Manifest(data, "", origin=f"{self.path}: manifest {digest}")

    def _check_blob(self, digest: str, size: int, parent: str) -> None:
        name = _member_name(digest)
        if name in self.members:
            if self.members[name].size != size:
                raise MalformedBundle(f"{self.path}: blob {digest} of manifest {parent} is {self.members[name].size}"
                                      f" bytes, its descriptor says {size}")
        elif digest not in self.base_homes:
            raise MalformedBundle(f"{self.path}: blob {digest} of manifest {parent} is neither in the bundle nor "
                                  "left to a base bundle")

    def jobs(self) -> list[Job]:
        """One job per image the bundle holds, read back from where the export laid it (its target path)."""
        return [Job(dataclasses.replace(Reference.parse(image["source"]), path=image["path"]), image["path"])
                for image in self.images]

    def manifest(self, repo: Repo, ref: str) -> Manifest | None:
        digest = ref if ref.startswith("sha256:") else self.by_name.get(f"{repo.path}:{ref}")
        name = _member_name(digest) if digest else ""
        if name not in self.members:
            return None
        data = self._read(name, MAX_MANIFEST)
        if sha256_digest(data) != digest:
            raise DigestMismatch(f"{self.path}: manifest {digest} was altered")
        return Manifest(data, _declared_type(data), origin=f"{self.path}: manifest {digest}")

    def blob_chunks(self, repo: Repo, digest: str, size: int, partial: Path | None = None) -> Iterator[Chunk]:
        name = _member_name(digest)
        if name not in self.members and digest in self.base_homes:
            raise BundleError(f"{self.path}: blob {digest} is left to the base bundle {self.base_name}, which the "
                              f"target lacks: import {self.base_name} first")
        if name not in self.members:
            raise BundleError(f"{self.path}: blob {digest} is missing")
        hasher, skip = hashlib.sha256(), partial.stat().st_size if partial else 0
        for chunk in self._chunks(name):
            hasher.update(chunk)
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            yield chunk[skip:]
            skip = 0
        if "sha256:" + hasher.hexdigest() != digest:
            raise DigestMismatch(f"{self.path}: blob {digest} was altered")

    def referrers(self, repo: Repo, digest: str) -> list[dict[str, Any]] | None:
        return None  # the bundle carries referrers under their fallback tags


def _member_name(digest: str) -> str:
    return "blobs/sha256/" + checked_digest(digest, "bundle").removeprefix("sha256:")


def _declared_type(data: bytes) -> str:
    try:
        body = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return OCI_MANIFEST
    return str(body.get("mediaType") or OCI_INDEX) if isinstance(body, dict) else OCI_MANIFEST


# ------------------------------------------------------------------------------------ pins and base records


def read_pinned(path: Path) -> dict[str, str]:
    """Reference without its digest -> the digest it must have: from a JSON bill of materials (`bom --resolve
    --format json`: its pinned images, charts and models) or a file of one `host/path:tag@sha256:...` a line."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"--expect-digests {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    try:
        bom = json.loads(text)
    except json.JSONDecodeError:
        bom = None
    if isinstance(bom, dict):
        listed = [str(r) for key in ("images", "charts", "models") for r in bom.get(key) or [] if "@sha256:" in str(r)]
        lines = [(0, r) for r in listed]
    else:
        lines = [(n, line.split("#", 1)[0].strip()) for n, line in enumerate(text.splitlines(), 1)]
    pinned: dict[str, str] = {}
    for number, line in lines:
        if not line:
            continue
        try:
            ref = Reference.parse(line)
        except ValueError as exc:
            raise BadInput(f"--expect-digests {path}:{number}: {exc}") from exc
        if not ref.digest:
            raise BadInput(f"--expect-digests {path}:{number}: {line} is not pinned by @sha256:<digest>")
        pinned[str(dataclasses.replace(ref, digest=None))] = ref.digest
    if not pinned:
        raise BadInput(f"--expect-digests {path}: no reference pinned by digest in the file")
    return pinned


def check_pinned(source: BundleSource, pinned: dict[str, str], where: Path) -> None:
    """Every image of the bundle is in `pinned` at the digest it holds."""
    for image in source.images:
        key = str(dataclasses.replace(Reference.parse(image["source"]), digest=None))
        if key not in pinned:
            raise BundleError(f"{source.path}: {key} is not in --expect-digests {where}")
        if pinned[key] != image["digest"]:
            raise BundleError(f"{source.path}: {key} is {image['digest']}, --expect-digests {where} pins "
                              f"{pinned[key]}")


def state_folder() -> Path:
    """Where imports are recorded: $PAICTL_STATE_DIR, else $XDG_STATE_HOME/paictl, else ~/.local/state/paictl."""
    if os.environ.get("PAICTL_STATE_DIR"):
        return Path(os.environ["PAICTL_STATE_DIR"])
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "paictl"


def _record_path(bundle_sha256: str) -> Path:
    return state_folder() / "imports" / f"{bundle_sha256}.json"


def _destination(destination: str) -> str:
    return destination.removeprefix("oci://").strip("/")


def _created(bundle_sha256: str, destination: str) -> set[str]:
    """The repositories an import of the bundle (by its index's sha256) created under `destination`, with those
    its own base's import did: the only ones a delta may mount from."""
    try:
        record = json.loads(_record_path(bundle_sha256).read_text())
        return {str(p) for p in record.get(_destination(destination), [])}
    except (OSError, json.JSONDecodeError, AttributeError, TypeError):
        return set()


def _record(source: BundleSource, destination: str, allowed: set[str]) -> None:
    path = _record_path(hashlib.sha256(source.listing_bytes).hexdigest())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        record = json.loads(path.read_text()) if path.is_file() else {}
        record[_destination(destination)] = sorted(allowed | {job.path for job in source.jobs()})
        _write_atomic(path, [json.dumps(record, indent=1).encode()])
    except (OSError, json.JSONDecodeError) as exc:
        raise OciError(f"imported, but could not record it in {path} (a delta since this bundle needs it): "
                       f"{exc}") from exc


def _mountable(source: BundleSource, destination: str) -> set[str]:
    """The repositories the delta `source` may mount its base's blobs from: refused unless each is one this
    machine's import of the base created under `destination`."""
    if not source.base_homes:
        return set()
    allowed = _created(source.base_sha256, destination)
    for digest, home in sorted(source.base_homes.items()):
        if home not in allowed:
            raise BundleError(f"{source.path}: blob {digest} is left to the base bundle {source.base_name}, whose "
                              f"import to {_destination(destination)} is not recorded with {home} in "
                              f"{state_folder()}: import {source.base_name} there first")
    return allowed


def import_bundle(path: Path, destination: str, *, plain_http: bool = False, authfile: Path | None = None,
                  workers: int = 8, progress: TerminalProgress | None = None, verify_key: Path | None = None,
                  expect_digests: Path | None = None, repair: bool = False, ca_file: Path | None = None) -> Stats:
    """Check the whole bundle (signature given `verify_key`, every file, the index, the pins given
    `expect_digests`, the manifest graph, the base's record for a delta), then push what the target lacks to
    `destination` (REGISTRY[/prefix]); `repair`: also re-send what is there but corrupt."""
    from airgap import signing

    key = signing.load_public_key(verify_key) if verify_key else None
    pinned = read_pinned(expect_digests) if expect_digests else None
    source = BundleSource(path)
    if key:
        if source.signature is None:
            raise signing.SignatureError(f"{path}: the bundle is not signed ({SIGNATURE_FILE} missing) and "
                                         f"--verify-key {verify_key} was given")
        signing.verify(source.listing_bytes, source.signature, key, f"{path}: {SIGNATURE_FILE}")
    source.verify()
    source.check_graph()
    if pinned is not None and expect_digests:
        check_pinned(source, pinned, expect_digests)
    allowed = _mountable(source, destination)
    registries = Registries(plain_http=plain_http, authfile=authfile, ca_file=ca_file)
    try:
        target = RegistryTarget(destination, registries, repair=repair)
        stats = Copier(source, target, workers=workers, progress=progress, homes=source.base_homes).run(
            source.jobs())
    finally:
        registries.close()
    _record(source, destination, allowed)
    return stats
