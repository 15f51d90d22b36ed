"""The node probe and smoke probe: what the GPU driver reports (NVML) and whether the GPU really computes.

The smoke probe runs at the deepest level available on the machine:
  vllm   vLLM generates a few tokens from a tiny Llama built locally with dummy weights (no download);
  torch  a CUDA matmul through torch, checked against the same product on the CPU;
  nvml   NVML only: driver and GPUs are listed, nothing is computed.
The result says which level ran. Without an NVIDIA driver the result is level nvml, not ok, "no NVIDIA driver
here". This file imports only the standard library at load time (pynvml, torch and vllm are imported when a
level runs), so the GPU probe Job runs it unchanged with `python3 -c` inside a runtime image; it prints one
JSON object. Run here: `python -m validation.smoke [--node NAME] [--level nvml|torch|vllm]`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

LEVELS = ("vllm", "torch", "nvml")
NO_DRIVER = "no NVIDIA driver here"
# A Llama small enough to build in a second on any GPU; vLLM fills it with random (dummy) weights.
TINY_LLAMA = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 128, "intermediate_size": 256,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4, "vocab_size": 512,
    "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "torch_dtype": "float16", "bos_token_id": 1,
    "eos_token_id": 2, "tie_word_embeddings": False,
}


class NvmlUnavailable(Exception):
    """NVML cannot be used: no NVIDIA driver on this machine, or NVML failed."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def nvml_probe(library: Any = None) -> dict[str, Any]:
    """Driver version, the CUDA version the driver supports, and per GPU: product, compute capability, MIG mode.
    `library`: the pynvml module or a stand-in with the same functions (default: import pynvml)."""
    try:
        nvml = library if library is not None else importlib.import_module("pynvml")
    except ImportError as exc:
        raise NvmlUnavailable(f"nvidia-ml-py is not installed: {exc}") from None
    try:
        nvml.nvmlInit()
    except nvml.NVMLError_LibraryNotFound:
        raise NvmlUnavailable(f"{NO_DRIVER}: the NVML library (libnvidia-ml.so.1) was not found") from None
    except nvml.NVMLError as exc:
        raise NvmlUnavailable(f"{NO_DRIVER}: NVML init failed: {exc}") from None
    try:
        cuda = int(nvml.nvmlSystemGetCudaDriverVersion())
        gpus = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
            try:
                current, _pending = nvml.nvmlDeviceGetMigMode(handle)
                mig = "enabled" if current == nvml.NVML_DEVICE_MIG_ENABLE else "disabled"
            except nvml.NVMLError:  # NVML_ERROR_NOT_SUPPORTED on GPUs without MIG
                mig = "unsupported"
            gpus.append({"index": index, "product": _text(nvml.nvmlDeviceGetName(handle)),
                         "compute_capability": f"{major}.{minor}", "mig_mode": mig})
        return {"driver_version": _text(nvml.nvmlSystemGetDriverVersion()),
                "cuda_driver_version": f"{cuda // 1000}.{cuda % 1000 // 10}", "gpus": gpus}
    except nvml.NVMLError as exc:
        raise NvmlUnavailable(f"NVML query failed: {exc}") from None
    finally:
        nvml.nvmlShutdown()


def torch_probe(torch: Any) -> tuple[bool, str]:
    """A 256x256 matmul on the GPU against the same product on the CPU."""
    a = torch.randn(256, 256, dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    b = torch.randn(256, 256, dtype=torch.float32, generator=torch.Generator().manual_seed(1))
    expected = a @ b
    got = (a.cuda() @ b.cuda()).cpu()
    error = float((got - expected).abs().max())
    name = torch.cuda.get_device_name(0)
    ok = bool(torch.allclose(got, expected, rtol=1e-3, atol=1e-3))
    return ok, f"matmul 256x256 on {name} (torch {torch.__version__}, CUDA {torch.version.cuda}): max error {error:.2e}"


def vllm_probe() -> tuple[bool, str]:
    """Generate 8 tokens with vLLM from a tiny Llama with dummy weights, built in a temp dir (no download)."""
    vllm = importlib.import_module("vllm")
    with tempfile.TemporaryDirectory(prefix="pai-smoke-") as model:
        (Path(model) / "config.json").write_text(json.dumps(TINY_LLAMA))
        llm = vllm.LLM(model=model, load_format="dummy", skip_tokenizer_init=True, enforce_eager=True,
                       max_model_len=128, gpu_memory_utilization=0.2, dtype="float16", seed=0)
        params = vllm.SamplingParams(max_tokens=8, temperature=0.0, ignore_eos=True, detokenize=False)
        outputs = llm.generate([{"prompt_token_ids": [1, 17, 42, 99]}], params)
        tokens = list(outputs[0].outputs[0].token_ids)
    ok = len(tokens) == 8
    return ok, f"vLLM {vllm.__version__} generated {len(tokens)} tokens from a dummy-weight tiny Llama: {tokens}"


def available_levels() -> list[str]:
    """Levels this machine can run, deepest first: torch needs torch with a CUDA device, vllm also needs vllm."""
    levels = []
    if importlib.util.find_spec("torch") is not None:
        torch = importlib.import_module("torch")
        if torch.cuda.is_available():
            levels = ["vllm", "torch"] if importlib.util.find_spec("vllm") is not None else ["torch"]
    return [*levels, "nvml"]


def run(node: str, level: str | None = None, library: Any = None) -> dict[str, Any]:
    """Probe NVML, then smoke-test at `level` (default: the deepest available). JSON-ready."""
    result: dict[str, Any] = {"node": node, "image": os.environ.get("PAI_PROBE_IMAGE", ""), "nvml": None}
    try:
        result["nvml"] = nvml_probe(library)
        nvml_ok, nvml_detail = bool(result["nvml"]["gpus"]), f"{len(result['nvml']['gpus'])} GPU(s) seen by NVML"
    except NvmlUnavailable as exc:
        nvml_ok, nvml_detail = False, str(exc)
    chosen = level or available_levels()[0]
    if chosen not in LEVELS:
        raise ValueError(f"level {chosen!r}: one of {', '.join(LEVELS)}")
    if chosen == "nvml":
        ok, detail = nvml_ok, nvml_detail
    else:
        try:
            ok, detail = vllm_probe() if chosen == "vllm" else torch_probe(importlib.import_module("torch"))
        except Exception as exc:  # the probe reports any failure of the engine as its result
            ok, detail = False, f"{chosen} failed: {type(exc).__name__}: {exc}"
    return {**result, "level": chosen, "ok": ok, "detail": detail}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pai-smoke", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--node", default=os.environ.get("NODE_NAME") or socket.gethostname())
    parser.add_argument("--level", choices=LEVELS, help="default: the deepest level available")
    args = parser.parse_args(argv)
    result = run(args.node, args.level)
    print(json.dumps(result, sort_keys=True))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
