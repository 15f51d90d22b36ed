"""The interop matrix: validation/data/*.yaml loaded into typed rows, with the look-ups the rules need.

Every row has a `source`; `unverified` keeps the mark of values seen only in third-party copies, and a check
that rests on such a row says so. The CUDA of the runtime images the platform pins is in the catalog
(components/catalog.yaml, `images.<key>.cuda`); runtime_images.yaml covers upstream images a stack names by
reference instead.
"""

from __future__ import annotations

import difflib
import re
from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict

from components.images import normalized

DATA = Path(__file__).with_name("data")
MIG_SUFFIX = re.compile(r"-MIG-\d+g\.\d+gb$")


def version_key(version: str) -> tuple[int, ...]:
    """A dotted version as integers for comparison: "570.148.08" -> (570, 148, 8); "v1.33.2+vmware.1" ->
    (1, 33, 2). Raises ValueError for text that does not start with a number."""
    found = re.match(r"v?(\d+(?:\.\d+)*)", version.strip())
    if found is None:
        raise ValueError(f"{version!r} is not a version like 570.148.08 or v1.33.2")
    return tuple(int(part) for part in found.group(1).split("."))


def branch_of(driver: str) -> str:
    """The driver branch of a driver version: "570.148.08" -> "R570"."""
    return f"R{driver.split('.')[0]}"


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    unverified: bool = False


class Toolkit(Row):
    cuda: str
    update: int
    min_driver: str


class CudaMajor(Row):
    major: int
    min_driver: str
    min_compute_capability: str | None = None


class ForwardCompatibility(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str
    source: str
    branch_types: list[str]
    branch_types_unverified: bool = False
    branch_types_source: str


class DriverBranch(Row):
    branch: str
    type: str
    cuda_major: int


class Gpu(Row):
    gpu: str
    cc: str
    arch: str
    datacenter: bool
    min_driver: str | None = None
    products: list[str] = []  # the exact GFD product names of the part
    products_unverified: bool = False

    def matches(self, product: str) -> bool:
        """Whether a GFD product string (NVIDIA-H100-80GB-HBM3) is this GPU."""
        bare = product.removeprefix("NVIDIA-").removeprefix("Tesla-")
        return bare == self.gpu or bare.startswith(f"{self.gpu}-")


class Engine(Row):
    engine: str
    min_compute_capability: str | None
    formats: list[str]
    last_release_per_cuda_major: dict[str, str] = {}
    last_release_unverified: bool = False


class VgpuVersion(Row):
    release: str
    host_manager: str
    linux_guest: str | None


class VgpuRelease(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vgpu: str
    branch: str
    branch_type: str
    branch_type_unverified: bool = False
    versions: list[VgpuVersion]


class VgpuCompatibility(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str
    same_branch_other_release_unverified: bool
    source: str


class RuntimeImage(Row):
    """An upstream runtime image repository over a range of tags, and the CUDA those tags are built with."""

    repository: str
    min: str
    max: str
    cuda: str

    def matches(self, ref: str) -> bool:
        name, _, tag = normalized(ref).split("@")[0].rpartition(":")
        if not name or "/" in tag:
            return False
        path = self.repository.split("/", 1)[1]
        if name != self.repository and not name.endswith(f"/{path}"):
            return False
        try:
            version = version_key(tag)
        except ValueError:
            return False
        low, high = version_key(self.min), version_key(self.max)
        return low <= version[:len(low)] and version[:len(high)] <= high


class KnownIssue(Row):
    issue: str
    drivers: list[str]
    mig_strategy: str
    fix: str


class Setting(Row):
    """One sourced value: the host graphics mode vGPU needs, the oldest compute capability vGPU supports."""

    value: str


class KubernetesRange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min: str
    max: str

    def contains(self, version: str) -> bool:
        minor = version_key(version)[:2]
        return version_key(self.min)[:2] <= minor <= version_key(self.max)[:2]


class OperatorRelease(Row):
    version: str
    default_driver: str
    supported_branches: list[str]
    supported_branches_unverified: bool = False
    supported_drivers: list[str] = []
    kubernetes: KubernetesRange
    crds: dict[str, list[str]] | None = None
    crds_unverified: bool = False
    crds_source: str | None = None


class Matrix(BaseModel):
    """All matrix data, validated on load."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    toolkits: list[Toolkit]
    majors: list[CudaMajor]
    forward_compatibility: ForwardCompatibility
    driver_branches: list[DriverBranch]
    gpus: list[Gpu]
    products_source: str
    engines: list[Engine]
    vgpu_compatibility: VgpuCompatibility
    vgpu_releases: list[VgpuRelease]
    vgpu_host_graphics: Setting
    vgpu_min_compute_capability: Setting
    known_issues: list[KnownIssue]
    runtime_images: list[RuntimeImage]
    operator_releases: list[OperatorRelease]
    operator_upgrade_rule: str
    operator_upgrade_rule_source: str

    def toolkit(self, cuda: str) -> Toolkit | None:
        """The toolkit row for an image's CUDA version: "13.0" is 13.0 GA; "12.8.1" is 12.8 Update 1."""
        parts = cuda.split(".")
        minor, update = ".".join(parts[:2]), int(parts[2]) if len(parts) > 2 else 0
        rows = [t for t in self.toolkits if t.cuda == minor and t.update <= update]
        return max(rows, key=lambda t: t.update, default=None)

    def major(self, cuda: str) -> CudaMajor | None:
        return next((m for m in self.majors if m.major == version_key(cuda)[0]), None)

    def branch(self, driver: str) -> DriverBranch | None:
        return next((b for b in self.driver_branches if b.branch == branch_of(driver)), None)

    def gpu(self, product: str) -> Gpu | None:
        return next((g for g in self.gpus if g.matches(product)), None)

    def product(self, product: str) -> Gpu | None:
        """The row that lists this exact GFD product name (or its MIG form, <product>-MIG-<profile>)."""
        name = MIG_SUFFIX.sub("", product)
        return next((g for g in self.gpus if name in g.products), None)

    def closest_products(self, product: str) -> list[str]:
        """Known product names nearest an unknown one: a bare family name (H100) gets its family's products, else
        the closest by spelling."""
        bare = product.removeprefix("NVIDIA-").removeprefix("Tesla-")
        family = next((g.products for g in self.gpus if g.gpu.lower() == bare.lower()), None)
        known = [p for g in self.gpus for p in g.products]
        return family or difflib.get_close_matches(product, known, n=1, cutoff=0.0)

    def engine(self, name: str) -> Engine | None:
        return next((e for e in self.engines if e.engine == name), None)

    def runtime_image(self, ref: str) -> RuntimeImage | None:
        """The row for an image reference that is not in the catalog."""
        return next((r for r in self.runtime_images if r.matches(ref)), None)

    def operator(self, version: str) -> OperatorRelease | None:
        return next((r for r in self.operator_releases if r.version == version), None)

    def vgpu_branch(self, branch: str) -> VgpuRelease | None:
        return next((r for r in self.vgpu_releases if r.branch == branch), None)

    def vgpu_version(self, host_manager: str | None = None, guest: str | None = None) -> VgpuVersion | None:
        """The vGPU release whose host manager (or Linux guest driver) is exactly this version."""
        for release in self.vgpu_releases:
            for row in release.versions:
                if (host_manager and row.host_manager == host_manager) or (guest and row.linux_guest == guest):
                    return row
        return None


def _load(name: str) -> dict[str, object]:
    loaded: dict[str, object] = yaml.safe_load((DATA / name).read_text())
    return loaded


@cache
def load_matrix() -> Matrix:
    cuda, gpus, engines, vgpu, operator, images = (_load(f"{n}.yaml") for n in (
        "cuda", "gpus", "engines", "vgpu", "gpu_operator", "runtime_images"))
    return Matrix.model_validate({
        **cuda, **gpus, **engines, "runtime_images": images["images"],
        "vgpu_compatibility": vgpu["compatibility"], "vgpu_releases": vgpu["releases"],
        "vgpu_host_graphics": {"value": vgpu["host_graphics_mode"], "unverified": vgpu["host_graphics_mode_unverified"],
                               "source": vgpu["host_graphics_mode_source"]},
        "vgpu_min_compute_capability": {"value": operator["vgpu_min_compute_capability"],
                                        "source": operator["vgpu_min_compute_capability_source"]},
        "known_issues": operator["known_issues"],
        "operator_releases": operator["releases"], "operator_upgrade_rule": operator["upgrade_rule"],
        "operator_upgrade_rule_source": operator["upgrade_rule_source"],
    })
