"""The gallery over the project's OCI client (airgap/oci.py): push, list, pull, promote and retire models.

A model is an OCI image whose layers hold its files under `/models` (a KServe modelcar), laid out by
models/layout.py: a new revision that changes a config file re-uses the weights' layers, which the registry
already holds. Layers are streamed from the files in 1 MiB pieces (bounded memory). A large file is read twice in
a push: by validation (its sha256 and its layer's digest) and by the upload, which the registry checks against
that digest; the small files' layer is hashed once more before anything is sent, its files checked against their
validated sha256. A file that changed since validation never completes its layer. `--base` puts the model on top
of an image with a shell (KServe runs the modelcar with `sh -c`), its layers mounted from the base's repository on
the same registry.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tarfile
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from airgap.oci import CHUNK, OCI_MANIFEST, Chunk, Manifest, OciError, Reference, Registries, Registry
from models import layout
from models.layout import MODEL_DIR
from models.validate import MANIFEST, FileEntry, Report, hash_file

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MODEL_LAYER = "dev.pai.model.layer"  # layer annotation: "true" on the layers that hold model files
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class GalleryError(OciError):
    """The gallery refused an operation, or content failed its checks (exit 1)."""


class ModelChanged(GalleryError):
    """A file's bytes differ from the validated manifest."""


def check_tag(tag: str) -> str:
    if tag == "latest":
        raise ValueError("the tag 'latest' is refused: name the revision (v1, 2026-05-01) or a promotion (prod)")
    if not TAG.match(tag):
        raise ValueError(f"{tag!r} is not an OCI tag (letters, digits, '_', '.', '-', at most 128)")
    return tag


def connect(ref: Reference, *, plain_http: bool = False, authfile: Path | None = None) -> Registry:
    return Registries(plain_http=plain_http, authfile=authfile).client(ref.host)


# ------------------------------------------------------------------------------------------------ layers


def _file_bytes(path: Path, entry: FileEntry) -> Iterator[Chunk]:
    """Exactly `entry.size` bytes of the file, checked before the last piece is given, so a changed file never
    completes a layer: a small file against its validated sha256; a large file, whose bytes its layer digest binds
    (the registry verifies it), against the size and modification time it was validated with."""
    hasher, left = hashlib.sha256(), entry.size
    with open(path, "rb") as f:
        while True:
            chunk = f.read(min(CHUNK, left)) if left else b""
            if not entry.layer:
                hasher.update(chunk)
            left -= len(chunk)
            if left and chunk:
                yield chunk
                continue
            stat = os.fstat(f.fileno())
            changed = (hasher.hexdigest() != entry.sha256 if not entry.layer
                       else (stat.st_size, stat.st_mtime_ns) != (entry.size, entry.mtime_ns))
            if left or f.read(1) or changed:
                raise ModelChanged(f"{entry.path}: changed since validation (sha256 {entry.sha256} was validated); "
                                   "run `paictl model validate` again if the change is intended")
            if chunk:
                yield chunk
            return


@dataclass(frozen=True)
class Layer:
    """One tar layer: its files under models/, in order."""

    files: tuple[FileEntry, ...]

    def chunks(self, root: Path) -> Iterator[Chunk]:
        if len(self.files) > 1:  # the small files' layer also names their directories
            dirs = {str(p) for f in self.files for p in PurePosixPath(MODEL_DIR, f.path).parents if str(p) != "."}
            for d in sorted(dirs):
                yield layout.header(d + "/", 0, directory=True)
        for entry in self.files:
            yield layout.file_header(entry.path, entry.size)
            yield from _file_bytes(root / entry.path, entry)
            yield layout.padding(entry.size)
        yield layout.END

    def digest(self, root: Path) -> tuple[str, int]:
        """The layer's digest and size: a large file's from its validation, else by streaming the layer once
        (the file hashes are checked on the way)."""
        if len(self.files) == 1 and self.files[0].layer:
            return self.files[0].layer, layout.own_layer_size(self.files[0].path, self.files[0].size)
        hasher, size = hashlib.sha256(), 0
        for chunk in self.chunks(root):
            hasher.update(chunk)
            size += len(chunk)
        return "sha256:" + hasher.hexdigest(), size


def layers(report: Report) -> list[Layer]:
    """The small files with the manifest first, then each large file on its own."""
    manifest_bytes = (report.directory / MANIFEST).read_bytes()
    manifest = FileEntry(MANIFEST, len(manifest_bytes), hashlib.sha256(manifest_bytes).hexdigest())
    return [Layer((manifest, *(f for f in report.files if not f.layer)))] + [
        Layer((f,)) for f in report.files if f.layer]


def _descriptor(media_type: str, digest: str, size: int, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


# -------------------------------------------------------------------------------------------------- push


def push(report: Report, target: Reference, client: Registry, *, base: Reference | None = None,
         progress: Callable[[str], None] = lambda _: None) -> str:
    """Push a validated model (its pai-model.json written beside it) as `target`; returns the manifest digest."""
    if not report.ok:
        raise GalleryError(f"{report.directory}: not validated: " + "; ".join(report.failures))
    root, repo = report.directory, target.path
    planned = []
    for layer in layers(report):
        digest, size = layer.digest(root)  # the small files re-hashed before the first byte is sent
        planned.append((layer, digest, size))
    config, descriptors = _base(client, base, repo)
    for layer, digest, size in planned:
        name = layer.files[-1].path if len(layer.files) == 1 else MANIFEST
        progress(f"layer {digest[:19]} {size} bytes ({name})")
        try:
            client.push_blob(repo, digest, size, functools.partial(layer.chunks, root), mount_from=repo)
        except OciError as exc:  # the registry refused the layer's digest: did a file change under it?
            for entry in layer.files:
                if entry.layer and hash_file(root / entry.path, entry.path).sha256 != entry.sha256:
                    raise ModelChanged(f"{entry.path}: changed since validation (sha256 {entry.sha256} was "
                                       "validated); the registry refused its layer") from exc
            raise
        descriptors.append(_descriptor(LAYER_MEDIA_TYPE, digest, size, annotations={
            MODEL_LAYER: "true", "org.opencontainers.image.title": f"{MODEL_DIR}/{name}"}))
    config["rootfs"]["diff_ids"] += [d for _, d, _ in planned]  # uncompressed: the diff id is the digest
    config.setdefault("config", {}).setdefault("Labels", {}).update(_labels(report))
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_digest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    client.push_blob(repo, config_digest, len(config_bytes), lambda: [config_bytes], mount_from=repo)
    body = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": _descriptor(CONFIG_MEDIA_TYPE, config_digest, len(config_bytes)),
            "layers": descriptors, "annotations": _labels(report)}
    manifest = Manifest(json.dumps(body, sort_keys=True).encode(), OCI_MANIFEST)
    client.put_manifest(repo, check_tag(str(target.tag)), manifest)
    return manifest.digest


def _labels(report: Report) -> dict[str, str]:
    return {"dev.pai.model.formats": ",".join(report.formats),
            "dev.pai.model.architecture": report.weights.architecture or "",
            "dev.pai.model.parameters": str(report.weights.parameters),
            "dev.pai.model.dtype": report.weights.dtype or ""}


def _base(client: Registry, base: Reference | None, repo: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The image config and layers to start from: an empty linux image, or the base image's (mounted into
    `repo`)."""
    if base is None:
        return {"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": []}}, []
    if base.host != client.host:
        raise GalleryError(f"--base {base} must be on {client.host}, where its layers are mounted from")
    manifest = client.get_manifest(base.path, base.ref)
    if manifest is not None and manifest.is_index:
        child = next((c for c in manifest.children() if c.get("platform", {}).get("architecture") == "amd64"
                      and c.get("platform", {}).get("os") == "linux"), None)
        manifest = client.get_manifest(base.path, child["digest"]) if child else None
    if manifest is None:
        raise GalleryError(f"--base {base}: no linux/amd64 image there")
    body = manifest.body
    desc = body["config"]
    config: dict[str, Any] = json.loads(b"".join(bytes(c) for c in client.blob_chunks(
        base.path, desc["digest"], int(desc["size"]))))
    config.pop("history", None)
    for layer in body["layers"]:
        _mount(client, base.path, repo, layer)
    return config, [dict(layer) for layer in body["layers"]]


def _mount(client: Registry, source: str, repo: str, desc: dict[str, Any]) -> None:
    """A blob of `source` made present in `repo`: mounted, or streamed across where the registry will not."""
    digest, size = str(desc["digest"]), int(desc["size"])
    client.push_blob(repo, digest, size, functools.partial(client.blob_chunks, source, digest, size), mount_from=source)


# -------------------------------------------------------------------------------------------------- list


@dataclass(frozen=True)
class Listed:
    repository: str
    tag: str
    digest: str
    annotations: dict[str, str]


def list_models(client: Registry, project: str) -> list[Listed]:
    """Every tag of every repository under `project`, with its digest and model annotations."""
    rows = []
    for repo in _catalog(client, project):
        for tag in _tags(client, repo):
            manifest = client.get_manifest(repo, tag)
            if manifest is None or manifest.is_index:
                continue
            annotations = {k: str(v) for k, v in manifest.body.get("annotations", {}).items()}
            rows.append(Listed(repo, tag, manifest.digest, annotations))
    return rows


def _paged(client: Registry, path: str, key: str, scope: str) -> Iterator[str]:
    while path:
        resp = client.request("GET", path, scope=scope, ok=(200, 404))
        data = resp.read()
        if resp.status == 404:
            return
        yield from json.loads(data).get(key) or []
        link = resp.headers.get("Link", "")
        found = re.match(r"<([^>]+)>", link)
        path = urllib.parse.urlsplit(found.group(1))._replace(scheme="", netloc="").geturl() if found else ""


def _catalog(client: Registry, project: str) -> list[str]:
    prefix = project.strip("/") + "/"
    return sorted(r for r in _paged(client, "/v2/_catalog?n=1000", "repositories", "registry:catalog:*")
                  if r.startswith(prefix))


def _tags(client: Registry, repo: str) -> list[str]:
    return sorted(_paged(client, f"/v2/{repo}/tags/list?n=1000", "tags", f"repository:{repo}:pull"))


# -------------------------------------------------------------------------------------------------- pull


def pull(ref: Reference, client: Registry, out: Path,
         progress: Callable[[str], None] = lambda _: None) -> tuple[str, list[FileEntry]]:
    """Write the model's files under `out`, each checked against the manifest carried in the artifact; returns
    the manifest digest and the files."""
    manifest = client.get_manifest(ref.path, ref.ref)
    if manifest is None:
        raise GalleryError(f"{ref}: not found")
    model_layers = [d for d in manifest.body.get("layers", []) if d.get("annotations", {}).get(MODEL_LAYER) == "true"]
    if not model_layers:
        raise GalleryError(f"{ref}: not a gallery model (no layer holds model files)")
    out.mkdir(parents=True, exist_ok=True)
    expected: dict[str, FileEntry] | None = None
    written: dict[str, str] = {}
    for desc in model_layers:
        progress(f"layer {desc['digest'][:19]} {desc['size']} bytes")
        layer = layout.Pieces(client.blob_chunks(ref.path, desc["digest"], int(desc["size"])))
        written.update(_extract(layer, out, expected))
        layer.drain()
        if expected is None:
            expected = _carried(out, written)
    assert expected is not None
    missing = sorted(set(expected) - set(written))
    if missing:
        raise GalleryError(f"{ref}: the manifest lists files no layer holds: {', '.join(missing)}")
    for name, entry in expected.items():
        if written[name] != entry.sha256:
            raise GalleryError(f"{ref}: {name} hashes to {written[name]}, not the {entry.sha256} of the manifest")
    for name in written:
        os.replace(out / f"{name}.partial", out / name)
    return manifest.digest, list(expected.values())


def _carried(out: Path, written: dict[str, str]) -> dict[str, FileEntry]:
    """The files the carried pai-model.json lists (the first layer holds it)."""
    if MANIFEST not in written:
        raise GalleryError(f"the first model layer holds no {MANIFEST}")
    body = json.loads((out / f"{MANIFEST}.partial").read_text())
    files = {f["path"]: FileEntry(f["path"], int(f["size"]), f["sha256"]) for f in body["files"]}
    for name in written:
        if name != MANIFEST and name not in files:
            raise GalleryError(f"{name}: a file the manifest does not list")
    return files


def _extract(layer: layout.Pieces, out: Path, expected: dict[str, FileEntry] | None) -> dict[str, str]:
    """Regular files under models/ written as `<name>.partial`; returns name -> sha256. Anything else is
    refused: links, devices, absolute or `..` paths, files the manifest does not list."""
    hashes = {}
    for member, kind, size in layout.members(layer):
        path = PurePosixPath(member)
        inside = path.parts[:1] == (MODEL_DIR,) and ".." not in path.parts
        if kind == tarfile.DIRTYPE and inside and size == 0:
            continue
        if kind not in (tarfile.REGTYPE, tarfile.AREGTYPE) or not inside or len(path.parts) < 2:
            raise GalleryError(f"layer entry {member!r}: only regular files under {MODEL_DIR}/ are accepted")
        name = str(PurePosixPath(*path.parts[1:]))
        if expected is not None and name not in expected:
            raise GalleryError(f"{name}: a file the manifest does not list")
        target = out / f"{name}.partial"
        target.parent.mkdir(parents=True, exist_ok=True)
        hasher = hashlib.sha256()
        with open(target, "wb") as f:
            for piece in layer.pieces(size):
                hasher.update(piece)
                f.write(piece)
        hashes[name] = hasher.hexdigest()
    return hashes


# ---------------------------------------------------------------------------------------- promote, retire


def promote(ref: Reference, tag: str, client: Registry, to: Reference | None = None) -> tuple[Reference, str]:
    """The same digest under a promotion tag, in `to`'s repository (mounted across repositories) or its own."""
    check_tag(tag)
    manifest = client.get_manifest(ref.path, ref.ref)
    if manifest is None:
        raise GalleryError(f"{ref}: not found")
    repo = to.path if to else ref.path
    if to and to.host != ref.host:
        raise GalleryError(f"{to}: a promotion stays on {ref.host}; copy across registries with `paictl airgap mirror`")
    current = client.manifest_digest(repo, tag)
    if current == manifest.digest:
        return Reference(ref.host, repo, tag, manifest.digest), "already"
    if current is not None:
        raise GalleryError(f"{ref.host}/{repo}:{tag} already names {current}; promotion tags are immutable: retire it "
                           "first")
    for desc in manifest.blobs():
        _mount(client, ref.path, repo, desc)
    client.put_manifest(repo, tag, manifest)
    return Reference(ref.host, repo, tag, manifest.digest), "promoted"


def tags_of(client: Registry, repo: str, digest: str) -> list[str]:
    return [t for t in _tags(client, repo) if client.manifest_digest(repo, t) == digest]


def untag(client: Registry, repo: str, digest: str, tags: list[str]) -> str:
    """Remove the tags (OCI 1.1 tag deletion); a registry without it (distribution 2.x) deletes the manifest
    from this repository by digest instead, which removes every tag naming it there. Returns how."""
    scope = f"repository:{repo}:pull,push,delete"
    for tag in tags:
        resp = client.request("DELETE", f"/v2/{repo}/manifests/{tag}", scope=scope, ok=(202, 400, 404, 405))
        resp.read()
        if resp.status != 202:
            others = sorted(set(tags_of(client, repo, digest)) - set(tags))
            if others:
                raise GalleryError(f"{client.host}/{repo} cannot delete a single tag, and deleting {digest} would "
                                   f"also remove {', '.join(others)}: retire it by digest")
            client.request("DELETE", f"/v2/{repo}/manifests/{digest}", scope=scope, ok=(202, 404)).read()
            return "deleted by digest"
    return "untagged"
