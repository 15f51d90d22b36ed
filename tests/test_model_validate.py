"""`paictl model validate`: file hashes, the pickle scan, engine fit, parameters from headers, GPU memory."""

from __future__ import annotations

import hashlib
import json
import pickle
import struct
import zipfile
from pathlib import Path

import pytest
from model_files import ARCHITECTURE, Exploit, gguf_model, hostile_pickle, safetensors_bytes, safetensors_model

from models.validate import MANIFEST, gpu_failures, validate
from models.weights import Weights
from paictl.cli import main


def test_a_safetensors_model_passes_with_every_file_hashed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = safetensors_model(tmp_path / "m")
    assert main(["model", "validate", str(model), "--engine", "vllm", "--gpu", "NVIDIA-L4", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["verdict"], report["architecture"], report["parameters"], report["dtype"]) == (
        "pass", ARCHITECTURE, 64 * 64 + 16 * 64, "BF16")
    assert report["weightBytes"] == 2 * (64 * 64 + 16 * 64) and report["engines"] == ["vllm", "infinity"]
    assert report["gpuMemoryGb"] == 24
    written = json.loads((model / MANIFEST).read_text())
    assert {f["path"]: f["sha256"] for f in written["files"]} == {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in model.iterdir() if p.name != MANIFEST}


def test_a_gguf_model_fits_llamacpp_only(tmp_path: Path) -> None:
    report = validate(gguf_model(tmp_path / "g"), engine="llamacpp")
    assert report.ok and report.engines == ["llamacpp"]
    assert (report.weights.architecture, report.weights.parameters, report.weights.dtype) == ("llama", 1280, "F16")
    refused = validate(tmp_path / "g", engine="vllm")
    assert refused.failures == ["engine vllm needs safetensors weights and config.json; the model has gguf and no "
                                "config.json"]


def test_vllm_needs_config_json(tmp_path: Path) -> None:
    report = validate(safetensors_model(tmp_path / "m", config=False), engine="vllm")
    assert not report.ok and "no config.json" in report.failures[0]
    assert validate(tmp_path / "m", engine="infinity").ok


def test_a_pickle_calling_os_system_is_refused_naming_the_file_and_global(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    model = hostile_pickle(tmp_path / "m", marker)
    for extra in ([], ["--allow-pickle", "legacy checkpoint, reviewed"]):
        assert main(["model", "validate", str(model), *extra]) == 1
        out = capsys.readouterr().out
        assert "FAIL          pytorch_model.bin: dangerous global posix.system" in out
    assert not marker.exists()  # scanned, never loaded
    assert not (model / MANIFEST).exists()


def test_a_clean_pickle_needs_a_reason_which_the_manifest_records(tmp_path: Path) -> None:
    model = safetensors_model(tmp_path / "m")
    (model / "training_args.bin").write_bytes(pickle.dumps({"lr": 0.001, "epochs": [1, 2]}, protocol=4))
    refused = validate(model)
    assert refused.failures == ["training_args.bin: a pickle-based format runs code when loaded; convert it to "
                                "safetensors, or accept it with --allow-pickle REASON"]
    accepted = validate(model, allow_pickle="trainer state, not loaded by the server")
    assert accepted.ok and accepted.manifest()["allowPickle"] == "trainer state, not loaded by the server"


@pytest.mark.parametrize("name", ["model.pt", "model.ckpt", "archive.bin"])
def test_a_zip_wrapped_pytorch_file_is_scanned_inside(tmp_path: Path, name: str) -> None:
    model = safetensors_model(tmp_path / "m")
    with zipfile.ZipFile(model / name, "w") as archive:  # torch.save's layout: <name>/data.pkl beside the storages
        archive.writestr("archive/data.pkl", pickle.dumps(Exploit(tmp_path / "never"), protocol=2))
        archive.writestr("archive/version", "3")
    assert f"{name}: dangerous global posix.system: loading it runs code the file chooses" in validate(
        model, allow_pickle="reviewed").failures


def test_a_pickle_behind_another_name_is_found_by_its_content(tmp_path: Path) -> None:
    model = safetensors_model(tmp_path / "m")
    (model / "weights.tensors").write_bytes(pickle.dumps(Exploit(tmp_path / "never"), protocol=2))
    report = validate(model, allow_pickle="x")
    assert "weights.tensors: dangerous global posix.system: loading it runs code the file chooses" in report.failures


def test_hostile_headers_are_refused_naming_the_file(tmp_path: Path) -> None:
    model = safetensors_model(tmp_path / "m")
    (model / "model.safetensors").write_bytes(struct.pack("<Q", 10**12) + b"{}")
    assert "model.safetensors: safetensors header length 1000000000000 is beyond the file" in validate(
        model).failures[0]
    (model / "model.safetensors").write_bytes(safetensors_bytes({"w": ("F32", [1024, 1024])})[:4096])
    assert validate(model).failures == ["model.safetensors: tensor 'w' data_offsets [0, 4194304] lie outside the file"]
    gguf = gguf_model(tmp_path / "g") / "model-f16.gguf"
    gguf.write_bytes(gguf.read_bytes()[:40])
    assert validate(tmp_path / "g").failures == ["model-f16.gguf: GGUF header runs past the end of the file"]


def test_links_are_refused(tmp_path: Path) -> None:
    model = safetensors_model(tmp_path / "m")
    (model / "passwd").symlink_to("/etc/passwd")
    assert validate(model).failures == ["passwd: not a regular file (links and devices are refused)"]


def test_weights_larger_than_the_gpu_fail(tmp_path: Path) -> None:
    big = Weights(parameters=20 * 10**9, weight_bytes=40 * 10**9)
    big.dtypes["BF16"] = 20 * 10**9
    assert gpu_failures(big, "NVIDIA-L4", 24) == [
        "the weights need 40.0 GB at BF16, more than the 24 GB of NVIDIA-L4 (before any KV cache)"]
    assert gpu_failures(big, "NVIDIA-H100-80GB-HBM3", 80) == []


def test_an_unknown_gpu_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = safetensors_model(tmp_path / "m")
    assert main(["model", "validate", str(model), "--gpu", "NVIDIA-Z9000"]) == 2
    assert "error: --gpu 'NVIDIA-Z9000' is not a GPU product in validation/data/gpus.yaml (T4, " in (
        capsys.readouterr().err)
    assert main(["model", "validate", str(tmp_path / "missing")]) == 2
