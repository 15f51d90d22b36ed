"""Manifests and indexes as read from a registry, and blob files in chunks."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airgap.oci.wire import CHUNK, INDEX_TYPES, MAX_MANIFEST, BadInput, Chunk, checked_descriptor, sha256_digest


@dataclass(frozen=True)
class Manifest:
    """A manifest or index exactly as served (its digest is the sha256 of these bytes). `origin` names where it
    came from in messages. Its descriptors are checked (digest form, size) before anyone uses them."""

    data: bytes
    media_type: str
    origin: str = field(default="", compare=False)

    @property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @functools.cached_property
    def body(self) -> dict[str, Any]:
        try:
            parsed = json.loads(self.data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(f"{self._where()}: not a JSON manifest ({exc})") from exc
        if not isinstance(parsed, dict):
            raise BadInput(f"{self._where()}: not a JSON manifest object")
        return parsed

    def _where(self) -> str:
        return self.origin or f"manifest {self.digest}"

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES or "manifests" in self.body

    def blobs(self) -> list[dict[str, Any]]:
        """Config and layer descriptors of an image or artifact manifest."""
        body = self.body
        found = [body["config"]] if "config" in body else []
        for key in ("layers", "blobs"):
            if not isinstance(body.get(key, []), list):
                raise BadInput(f"{self._where()}: {key} is not a list")
            found += body.get(key, [])
        return [checked_descriptor(desc, self._where()) for desc in found]

    def children(self) -> list[dict[str, Any]]:
        """The platforms of an index (or the manifests of a referrers list), each no larger than MAX_MANIFEST."""
        if not self.is_index:
            return []
        listed = self.body.get("manifests", [])
        if not isinstance(listed, list):
            raise BadInput(f"{self._where()}: manifests is not a list")
        children = [checked_descriptor(desc, self._where()) for desc in listed]
        for desc in children:
            if desc["size"] > MAX_MANIFEST:
                raise BadInput(f"{self._where()}: child {desc['digest']} declares {desc['size']} bytes, more than "
                               f"the {MAX_MANIFEST} accepted for a manifest")
        return children


def file_chunks(path: Path, skip: int = 0) -> Iterator[Chunk]:
    """A file's bytes after the first `skip`."""
    with open(path, "rb") as f:
        f.seek(skip)
        while chunk := f.read(CHUNK):
            yield chunk


def fallback_tag(digest: str) -> str:
    """The Referrers tag schema: sha256:<hex> -> sha256-<hex>."""
    return digest.replace(":", "-")
