"""What every part shares: media types, size limits, the errors, digest and descriptor checks."""

from __future__ import annotations

import hashlib
import http.client
import re
from typing import Any

CHUNK = 1 << 20
Chunk = bytes | memoryview  # a piece of a blob on its way; a memoryview is valid until the next piece is asked for

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")  # the one algorithm accepted from outside (its registered pattern)
MAX_MANIFEST = 4 << 20  # what distribution accepts for a manifest or index
MAX_REPLY = 1 << 20  # a token reply, or a referrers list
MAX_ERROR_BODY = 512  # what an error message quotes of a registry's error body
MIN_RATE = 64 << 10  # bytes/s a blob download may not fall below on average (its deadline grows with its size)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
NETWORK_ERRORS = (OSError, http.client.HTTPException)
DOCKER_HUB = "registry-1.docker.io"


class OciError(Exception):
    """A registry or layout refused, or content failed verification."""


class DigestMismatch(OciError):
    """Bytes read do not hash to the digest that names them."""


class BadInput(OciError):
    """Input from outside (a registry's reply, a bundle, an auth file, a key, a list) that is malformed or
    hostile: refused before anything is written."""


class RegistryDown(OciError):
    """A registry that did not answer through every retry; later requests to it fail at once."""

    def __init__(self, host: str, message: str):
        super().__init__(message)
        self.host = host


class _Retryable(OciError):
    """A transient failure (429/5xx, dropped connection) worth another attempt."""


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def checked_digest(value: object, where: str) -> str:
    """`value` if it is sha256:<64 lowercase hex>, else BadInput naming `where` (a digest from outside may end up
    in a path or a URL)."""
    if isinstance(value, str) and DIGEST.fullmatch(value):
        return value
    raise BadInput(f"{where}: {str(value)[:100]!r} is not a digest sha256:<64 hex>, the only form accepted")


def checked_descriptor(desc: object, where: str) -> dict[str, Any]:
    """A descriptor with a valid digest and a non-negative integer size, else BadInput naming `where`."""
    if not isinstance(desc, dict):
        raise BadInput(f"{where}: a descriptor is not a JSON object")
    checked_digest(desc.get("digest"), where)
    size = desc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadInput(f"{where}: descriptor {desc.get('digest')} has size {size!r}, not a non-negative integer")
    return desc
