"""The node probe (NVML) and the smoke probe: faked only at the pynvml boundary; the real library on this machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pynvml
import pytest
from schemas import validate_core

from components.catalog import load_catalog
from validation import smoke
from validation.sources.nvml import gfd_product, nvml_facts, probe_facts, probe_job

HAS_GPU = Path("/dev/nvidiactl").exists()


class FakeNvml:
    """A stand-in for the pynvml module: the same functions and error classes, answering for `gpus`."""

    NVMLError = pynvml.NVMLError
    NVMLError_LibraryNotFound = pynvml.NVMLError_LibraryNotFound
    NVML_DEVICE_MIG_ENABLE = pynvml.NVML_DEVICE_MIG_ENABLE

    def __init__(self, gpus: list[dict[str, Any]], driver: str = "570.148.08", cuda: int = 12080,
                 init_error: Exception | None = None) -> None:
        self.gpus, self.driver, self.cuda, self.init_error = gpus, driver, cuda, init_error
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        if self.init_error:
            raise self.init_error

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.driver

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return self.cuda

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict[str, Any]:
        return self.gpus[index]

    def nvmlDeviceGetName(self, handle: dict[str, Any]) -> bytes:
        return str(handle["name"]).encode()  # older nvidia-ml-py returns bytes

    def nvmlDeviceGetCudaComputeCapability(self, handle: dict[str, Any]) -> tuple[int, int]:
        major, minor = handle["cc"]
        return major, minor

    def nvmlDeviceGetMigMode(self, handle: dict[str, Any]) -> tuple[int, int]:
        if handle.get("mig") is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return handle["mig"], handle["mig"]


H100 = {"name": "NVIDIA H100 80GB HBM3", "cc": (9, 0), "mig": 0}


def test_nvml_facts_per_node_from_the_library() -> None:
    fake = FakeNvml([H100, {**H100, "mig": 1}], driver="580.95.05", cuda=13000)
    facts = nvml_facts("gpu-0", fake)
    (node,) = facts.nodes
    assert node.origin == "nvml" and node.name == "gpu-0"
    assert node.products == {"NVIDIA-H100-80GB-HBM3": 2}
    assert (node.driver_version, node.cuda_driver_version, node.compute_capability) == ("580.95.05", "13.0", "9.0")
    assert node.mig_mode == "enabled"
    assert fake.shutdowns == 1


def test_cuda_driver_version_and_lowest_compute_capability() -> None:
    l4 = {"name": "NVIDIA L4", "cc": (8, 9), "mig": None}
    (node,) = nvml_facts("mixed", FakeNvml([H100, l4], cuda=12090)).nodes
    assert node.cuda_driver_version == "12.9" and node.compute_capability == "8.9"
    assert node.products == {"NVIDIA-H100-80GB-HBM3": 1, "NVIDIA-L4": 1}


def test_gpu_without_mig_support_has_no_mig_mode() -> None:
    (node,) = nvml_facts("l4", FakeNvml([{"name": "NVIDIA L4", "cc": (8, 9), "mig": None}])).nodes
    assert node.mig_mode is None


def test_library_not_found_at_the_boundary_is_no_driver_here() -> None:
    fake = FakeNvml([], init_error=pynvml.NVMLError_LibraryNotFound(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND))
    facts = nvml_facts("cpu-0", fake)
    assert facts.nodes == [] and smoke.NO_DRIVER in facts.sources["nvml"]


@pytest.mark.skipif(HAS_GPU, reason="this machine has an NVIDIA driver")
def test_real_pynvml_on_a_machine_without_a_driver() -> None:
    facts = nvml_facts("here")
    assert facts.nodes == []
    assert facts.sources["nvml"] == f"here: {smoke.NO_DRIVER}: the NVML library (libnvidia-ml.so.1) was not found"


@pytest.mark.skipif(HAS_GPU, reason="this machine has an NVIDIA driver")
def test_smoke_without_a_gpu_reports_the_nvml_level_not_ok() -> None:
    assert smoke.available_levels()[-1] == "nvml"
    result = smoke.run("here")
    assert (result["level"], result["ok"], result["nvml"]) == ("nvml", False, None)
    assert smoke.NO_DRIVER in result["detail"]


def test_smoke_at_the_nvml_level_with_gpus_is_ok() -> None:
    result = smoke.run("gpu-0", level="nvml", library=FakeNvml([H100]))
    assert (result["level"], result["ok"]) == ("nvml", True)
    assert result["nvml"]["gpus"][0]["compute_capability"] == "9.0"


@pytest.mark.skipif(HAS_GPU, reason="this machine has an NVIDIA driver")
def test_a_level_that_cannot_run_is_a_failed_result_naming_the_level() -> None:
    result = smoke.run("gpu-0", level="vllm", library=FakeNvml([H100]))
    assert (result["level"], result["ok"]) == ("vllm", False)
    assert result["detail"].startswith("vllm failed:")


def test_probe_script_runs_standalone_and_its_log_becomes_facts() -> None:
    """The Job runs validation/smoke.py with `python3 -c` in an image without this package: no site-packages."""
    script = Path(smoke.__file__).read_text()
    done = subprocess.run([sys.executable, "-S", "-c", script, "--node", "gpu-7", "--level", "nvml"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr  # no pynvml importable: not ok
    facts = probe_facts("some image banner\n" + done.stdout)
    (run,) = facts.smoke
    assert (run.node, run.level, run.ok, run.origin) == ("gpu-7", "nvml", False, "smoke")
    assert "nvidia-ml-py is not installed" in run.detail and facts.nodes == []


def test_probe_log_with_nvml_results_gives_node_facts() -> None:
    result = smoke.run("gpu-3", level="nvml", library=FakeNvml([H100], driver="570.148.08"))
    facts = probe_facts(json.dumps(result))
    assert [(n.name, n.driver_version, n.origin) for n in facts.nodes] == [("gpu-3", "570.148.08", "nvml")]
    assert facts.smoke[0].ok and facts.sources["smoke"] == "level nvml on node gpu-3"


def test_probe_log_without_a_result_is_an_error() -> None:
    with pytest.raises(ValueError, match="no JSON result"):
        probe_facts("Error: ImagePullBackOff\n")


def test_probe_job_is_a_valid_job_on_gpu_nodes_in_a_runtime_image() -> None:
    image = load_catalog().image("vllm").ref
    job = probe_job(image, pull_secret="mirror-pull", level="vllm")
    validate_core(job, "1.33")
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == image and container["command"][:2] == ["python3", "-c"]
    assert container["command"][2] == Path(smoke.__file__).read_text() and container["command"][3:] == ["--level",
                                                                                                         "vllm"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["imagePullSecrets"] == [{"name": "mirror-pull"}] and pod["restartPolicy"] == "Never"


def test_gfd_product_names() -> None:
    assert gfd_product("NVIDIA H100 80GB HBM3") == "NVIDIA-H100-80GB-HBM3"
    assert gfd_product("NVIDIA A100-SXM4-40GB") == "NVIDIA-A100-SXM4-40GB"


@pytest.mark.parametrize("level", ["nvml", "torch", "vllm"])
@pytest.mark.gpu
@pytest.mark.skipif(not HAS_GPU, reason="no NVIDIA GPU on this machine")
def test_real_gpu_probe_at_each_level(level: str) -> None:
    if level != "nvml" and level not in smoke.available_levels():
        pytest.skip(f"{level} is not installed here")
    result = smoke.run("this-gpu", level=level)
    assert result["ok"], result["detail"]
    assert nvml_facts("this-gpu").nodes[0].driver_version
