"""How a model's files become the tar layers of its OCI image: every file under `models/`, small files together
in one layer with the manifest, each large file in a layer of its own. Uncompressed (weights do not compress, and
an uncompressed layer's digest is also its diff id), with fixed headers (mode 0644, owner 0, mtime 0), so one model
always gives one digest. A pulled layer is read back entry by entry without tarfile's stream mode, whose record
buffering copies every byte several times."""

from __future__ import annotations

import tarfile
from collections.abc import Iterable, Iterator

from airgap.oci import Chunk, OciError

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


# ------------------------------------------------------------------------------------------------- reading
PAX_MAX = 1 << 20  # a PAX or long-name header body larger than this is refused


class LayerError(OciError):
    """A pulled layer that is not a tar this gallery accepts; the message names the entry."""


class Pieces:
    """Exact reads over a layer's chunks: headers copied (they are small), file bodies passed through as views of
    the chunks, never joined, so memory stays one chunk."""

    def __init__(self, chunks: Iterable[Chunk]):
        self._chunks, self._view = iter(chunks), memoryview(b"")

    def _next(self) -> None:
        chunk = next(self._chunks, None)
        if chunk is None:
            raise LayerError("the layer ends inside a tar entry")
        self._view = memoryview(chunk)

    def pieces(self, n: int) -> Iterator[memoryview]:
        """The next `n` bytes as views, each valid until the next piece is asked for."""
        while n:
            if not self._view:
                self._next()
            piece, self._view = self._view[:n], self._view[n:]
            n -= len(piece)
            yield piece

    def take(self, n: int) -> bytes:
        return b"".join(bytes(p) for p in self.pieces(n))

    def drain(self) -> None:
        """Read to the end (the layer's digest is checked once its last byte is read)."""
        for _ in self._chunks:
            pass


def members(layer: Pieces) -> Iterator[tuple[str, bytes, int]]:
    """(name, tar type, size) of each entry; the caller reads `size` bytes (`layer.pieces`) before the next. PAX
    path/size records and GNU long names are applied; any other extension is left to the caller to refuse."""
    extended: dict[str, str] = {}
    while True:
        block = layer.take(BLOCK)
        if block == bytes(BLOCK):
            return
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise LayerError(f"a bad tar header in the layer: {exc}") from None
        if info.type in (tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME):
            if info.size > PAX_MAX:
                raise LayerError(f"a {info.size}-byte extended tar header in the layer")
            body = layer.take(info.size)
            layer.take(-info.size % BLOCK)
            if info.type == tarfile.GNUTYPE_LONGNAME:
                extended["path"] = body.rstrip(b"\0").decode("utf-8", "surrogateescape")
            else:
                extended.update(_pax_records(body))
            continue
        name, size = extended.pop("path", info.name), int(extended.pop("size", info.size))
        extended.clear()
        yield name, info.type, size
        layer.take(-size % BLOCK)


def _pax_records(body: bytes) -> dict[str, str]:
    """`<length> <key>=<value>\\n` records."""
    records, pos = {}, 0
    while pos < len(body):
        space = body.find(b" ", pos)
        try:
            length = int(body[pos:space])
        except ValueError:
            raise LayerError("a malformed PAX record in the layer") from None
        key, _, value = body[space + 1:pos + length - 1].partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records
