"""How a model's files become the tar layers of its OCI image: every file under `models/`, small files together
in one layer with the manifest, each large file in a layer of its own. Uncompressed (weights do not compress, and
an uncompressed layer's digest is also its diff id), with fixed headers (mode 0644, owner 0, mtime 0), so one model
always gives one digest."""

from __future__ import annotations

import tarfile

MODEL_DIR = "models"
LARGE_FILE = 64 * 1024 * 1024  # files at least this large get a layer of their own
BLOCK = 512
END = bytes(2 * BLOCK)  # the end-of-archive marker


def header(name: str, size: int, directory: bool = False) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.uid, info.gid = (0 if directory else size), 0, 0, 0
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def file_header(path: str, size: int) -> bytes:
    return header(f"{MODEL_DIR}/{path}", size)


def padding(size: int) -> bytes:
    return bytes(-size % BLOCK)


def own_layer_size(path: str, size: int) -> int:
    """The size of the layer that holds only this file."""
    return len(file_header(path, size)) + size + len(padding(size)) + len(END)
