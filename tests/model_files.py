"""Small model directories for the gallery tests, written byte by byte: safetensors and GGUF files with real
headers, a Hugging Face config.json, and a pickle whose __reduce__ calls os.system."""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path
from typing import Any

ARCHITECTURE = "LlamaForCausalLM"


def safetensors_bytes(tensors: dict[str, tuple[str, list[int]]], fill: int = 7) -> bytes:
    """A safetensors file: name -> (dtype, shape); data bytes all `fill`."""
    sizes = {"F32": 4, "BF16": 2, "F16": 2, "I8": 1}
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        count = 1
        for dim in shape:
            count *= dim
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + count * sizes[dtype]]}
        offset += count * sizes[dtype]
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + bytes([fill]) * offset


def safetensors_model(directory: Path, *, config: bool = True) -> Path:
    """A two-tensor BF16 model: 4096 + 1024 = 5120 parameters, 10240 bytes of weights."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.safetensors").write_bytes(safetensors_bytes({
        "embed.weight": ("BF16", [64, 64]), "lm_head.weight": ("BF16", [16, 64])}))
    if config:
        (directory / "config.json").write_text(json.dumps({"architectures": [ARCHITECTURE], "model_type": "llama"}))
    (directory / "tokenizer.json").write_text('{"version": "1.0"}')
    return directory


def _gguf_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def gguf_model(directory: Path) -> Path:
    """A GGUF v3 file: general.architecture llama, two F16 tensors (32x32 and 8x32: 1280 parameters)."""
    directory.mkdir(parents=True, exist_ok=True)
    kv = (_gguf_string("general.architecture") + struct.pack("<I", 8) + _gguf_string("llama")
          + _gguf_string("llama.context_length") + struct.pack("<I", 4) + struct.pack("<I", 2048))
    tensors = b""
    offset = 0
    for name, dims in (("token_embd.weight", [32, 32]), ("output.weight", [32, 8])):
        tensors += _gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        tensors += struct.pack("<I", 1) + struct.pack("<Q", offset)
        offset += dims[0] * dims[1] * 2
    head = b"GGUF" + struct.pack("<IQQ", 3, 2, 2) + kv + tensors
    head += bytes(-len(head) % 32)
    (directory / "model-f16.gguf").write_bytes(head + bytes(offset))
    return directory


class Exploit:
    """Unpickling this runs a shell command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def hostile_pickle(directory: Path, marker: Path) -> Path:
    """A safetensors model plus pytorch_model.bin whose unpickling runs `touch marker`."""
    safetensors_model(directory)
    (directory / "pytorch_model.bin").write_bytes(pickle.dumps(Exploit(marker), protocol=4))
    return directory
