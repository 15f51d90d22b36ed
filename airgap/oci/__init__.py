"""The project's one OCI distribution client: streaming, verified, concurrent, resumable registry access.

`Registry` speaks the distribution API to one host (pooled keep-alive connections, Bearer-token and basic
auth from a docker config file or its credential helpers, retries with backoff on 429/5xx and dropped
connections, Range resume of a broken blob download, sha256 verification of every byte read). Everything a
registry sends is untrusted: digests must be sha256:<64 hex>, manifests and error bodies are size-bounded, a
blob stops at its declared size, every request has a deadline, and credentials never travel over plain HTTP
to anything but a loopback registry the user named with --plain-http. `Copier` copies images, indexes with all their
platforms, OCI artifacts and their referrers from a `Source` to a `Target` (a registry or an OCI layout) with a
bounded thread pool, fetching each blob once per run and mounting it across repositories of the target.
"""

from airgap.oci.auth import AuthFile, docker_config_path
from airgap.oci.copy import Copier, Job, Progress, Registries, RegistryTarget, Repo, Source, Stats, Target
from airgap.oci.http import Registry, Response
from airgap.oci.manifests import Manifest, fallback_tag, file_chunks
from airgap.oci.references import REPO_PATH, Reference
from airgap.oci.wire import (
    CHUNK,
    DIGEST,
    DOCKER_HUB,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    LOOPBACK,
    MANIFEST_TYPES,
    MAX_ERROR_BODY,
    MAX_MANIFEST,
    MAX_REPLY,
    MIN_RATE,
    NETWORK_ERRORS,
    OCI_INDEX,
    OCI_MANIFEST,
    RETRY_STATUS,
    BadInput,
    Chunk,
    DigestMismatch,
    OciError,
    RegistryDown,
    checked_descriptor,
    checked_digest,
    sha256_digest,
)

__all__ = [
    "CHUNK",
    "DIGEST",
    "DOCKER_HUB",
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "INDEX_TYPES",
    "LOOPBACK",
    "MANIFEST_TYPES",
    "MAX_ERROR_BODY",
    "MAX_MANIFEST",
    "MAX_REPLY",
    "MIN_RATE",
    "NETWORK_ERRORS",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "REPO_PATH",
    "RETRY_STATUS",
    "AuthFile",
    "BadInput",
    "Chunk",
    "Copier",
    "DigestMismatch",
    "Job",
    "Manifest",
    "OciError",
    "Progress",
    "Reference",
    "Registries",
    "Registry",
    "RegistryDown",
    "RegistryTarget",
    "Repo",
    "Response",
    "Source",
    "Stats",
    "Target",
    "checked_descriptor",
    "checked_digest",
    "docker_config_path",
    "fallback_tag",
    "file_chunks",
    "sha256_digest",
]
