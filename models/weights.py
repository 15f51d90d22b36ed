"""What a model's weight files hold, read from their headers only (never the tensors): parameter count, dtype and
bytes of safetensors files (an 8-byte little-endian header length, then a JSON header) and GGUF files (magic,
version, metadata key/values, tensor infos), and the architecture from `config.json` or GGUF metadata.

Every length and count in a header is untrusted: each is bounded by the file's size before it is used.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

SAFETENSORS_HEADER_MAX = 100 * 1024 * 1024  # the limit the safetensors library itself enforces
# Bytes per element of each safetensors dtype (huggingface/safetensors, safetensors/src/tensor.rs Dtype).
SAFETENSORS_DTYPES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8, "F4": 0.5, "F6_E2M3": 0.75, "F6_E3M2": 0.75,
}
GGUF_MAGIC = b"GGUF"
GGUF_ALIGNMENT = 32  # general.alignment's default (ggml-org/ggml docs/gguf.md)
# GGUF metadata value types (ggml-org/ggml docs/gguf.md, gguf_metadata_value_type): fixed sizes by type id.
GGUF_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
GGUF_STRING, GGUF_ARRAY = 8, 9


class WeightsError(ValueError):
    """A weight file whose header cannot be read; the message names the file."""


@dataclass
class Weights:
    """Totals over a model's weight files."""

    parameters: int = 0
    weight_bytes: int = 0
    dtypes: Counter[str] = field(default_factory=Counter)  # parameters per dtype
    architecture: str | None = None

    @property
    def dtype(self) -> str | None:
        """The dtype most parameters have."""
        return self.dtypes.most_common(1)[0][0] if self.dtypes else None

    def add(self, other: Weights) -> None:
        self.parameters += other.parameters
        self.weight_bytes += other.weight_bytes
        self.dtypes.update(other.dtypes)
        self.architecture = self.architecture or other.architecture


def safetensors(path: Path, name: str) -> Weights:
    """Parameters and bytes per dtype from a safetensors header; offsets must lie inside the file."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            raise WeightsError(f"{name}: not a safetensors file (shorter than its 8-byte header length)")
        (length,) = struct.unpack("<Q", raw)
        if length > min(SAFETENSORS_HEADER_MAX, size - 8):
            raise WeightsError(f"{name}: safetensors header length {length} is beyond the file or the 100 MiB limit")
        try:
            header = json.loads(f.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise WeightsError(f"{name}: safetensors header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{name}: safetensors header is not a JSON object")
    found, data = Weights(), size - 8 - length
    for tensor, info in header.items():
        if tensor == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = info["dtype"], info["shape"], info["data_offsets"]
            count = math.prod(int(d) for d in shape)
        except (KeyError, TypeError, ValueError):
            raise WeightsError(f"{name}: tensor {tensor!r} lacks a dtype, shape or data_offsets") from None
        if dtype not in SAFETENSORS_DTYPES:
            raise WeightsError(f"{name}: tensor {tensor!r} has dtype {dtype!r}, not one of "
                               f"{', '.join(SAFETENSORS_DTYPES)}")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= data):
            raise WeightsError(f"{name}: tensor {tensor!r} data_offsets {[start, end]} lie outside the file")
        if end - start != math.ceil(count * SAFETENSORS_DTYPES[dtype]):
            raise WeightsError(f"{name}: tensor {tensor!r} shape {shape} of {dtype} does not fit its {end - start} "
                               "bytes")
        found.parameters += count
        found.weight_bytes += end - start
        found.dtypes[dtype] += count
    return found


class _Reader:
    """Bounded little-endian reads of a GGUF header."""

    def __init__(self, f: BinaryIO, size: int, name: str):
        self.f, self.size, self.name = f, size, name

    def take(self, n: int) -> bytes:
        if n < 0 or self.f.tell() + n > self.size:
            raise WeightsError(f"{self.name}: GGUF header runs past the end of the file")
        return self.f.read(n)

    def unpack(self, fmt: str) -> Any:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))[0]

    def string(self) -> str:
        return self.take(self.unpack("Q")).decode("utf-8", errors="replace")

    def value(self, kind: int) -> Any:
        if kind == GGUF_STRING:
            return self.string()
        if kind == GGUF_ARRAY:
            inner, count = self.unpack("I"), self.unpack("Q")
            if inner in GGUF_FIXED:
                self.take(GGUF_FIXED[inner] * count)  # arrays (token lists) are skipped, never kept
                return None
            for _ in range(count):
                self.value(inner)
            return None
        if kind not in GGUF_FIXED:
            raise WeightsError(f"{self.name}: unknown GGUF metadata type {kind}")
        fmt = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}[kind]
        return self.unpack(fmt)


# ggml tensor types as GGUF names them (ggml-org/ggml include/ggml.h, enum ggml_type), for the dtype report.
GGML_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K",
              11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 24: "I8", 25: "I16", 26: "I32", 27: "I64",
              28: "F64", 30: "BF16", 39: "MXFP4"}


def gguf(path: Path, name: str) -> Weights:
    """Parameters (the product of every tensor's dimensions), the data section's bytes and the architecture
    (`general.architecture`) from a GGUF header."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        read = _Reader(f, size, name)
        if read.take(4) != GGUF_MAGIC:
            raise WeightsError(f"{name}: not a GGUF file (no GGUF magic)")
        version = read.unpack("I")
        if version not in (2, 3):
            raise WeightsError(f"{name}: GGUF version {version}; versions 2 and 3 are read")
        tensors, entries = read.unpack("Q"), read.unpack("Q")
        if tensors > size or entries > size:
            raise WeightsError(f"{name}: GGUF header counts ({tensors} tensors, {entries} keys) exceed the file")
        found, alignment = Weights(), GGUF_ALIGNMENT
        for _ in range(entries):
            key, kind = read.string(), read.unpack("I")
            value = read.value(kind)
            if key == "general.architecture" and isinstance(value, str):
                found.architecture = value
            elif key == "general.alignment" and isinstance(value, int) and value > 0:
                alignment = value
        for _ in range(tensors):
            read.string()
            dims = read.unpack("I")
            if dims > 8:
                raise WeightsError(f"{name}: a GGUF tensor with {dims} dimensions")
            count = math.prod(read.unpack("Q") for _ in range(dims))
            kind = read.unpack("I")
            read.unpack("Q")  # offset in the data section
            found.parameters += count
            found.dtypes[GGML_TYPES.get(kind, f"ggml-type-{kind}")] += count
        start = -(-f.tell() // alignment) * alignment
    found.weight_bytes = max(size - start, 0)
    return found


def architecture(config: Path) -> str | None:
    """`architectures[0]` (else `model_type`) of a Hugging Face `config.json`; None when it names neither."""
    try:
        data = json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WeightsError(f"config.json is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WeightsError("config.json is not a JSON object")
    names = data.get("architectures")
    if isinstance(names, list) and names and isinstance(names[0], str):
        return names[0]
    return data["model_type"] if isinstance(data.get("model_type"), str) else None
