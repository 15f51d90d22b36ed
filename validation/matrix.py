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
from typing import ClassVar, Literal

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
    """A sourced matrix row. `TABLE` and `KEY` name it in a report: "gpus V100"."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    TABLE: ClassVar[str] = ""
    KEY: ClassVar[tuple[str, ...]] = ()

    source: str
    unverified: bool = False

    @property
    def label(self) -> str:
        return " ".join([self.TABLE, *(str(getattr(self, k)) for k in self.KEY)])


class Toolkit(Row):
    TABLE, KEY = "cuda.toolkits", ("cuda", "update")
    cuda: str
    update: int
    min_driver: str


class CudaMajor(Row):
    TABLE, KEY = "cuda.majors", ("major",)
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
    TABLE, KEY = "cuda.driver_branches", ("branch",)
    branch: str
    type: str
    cuda_major: int


class Gpu(Row):
    TABLE, KEY = "gpus", ("gpu",)
    gpu: str
    cc: str
    arch: str
    datacenter: bool
    min_driver: str | None = None
    last_branch: str | None = None
    last_branch_source: str | None = None
    products: list[str] = []  # the exact GFD product names of the part
    products_unverified: bool = False
    memory_gb: int
    memory_source: str
    memory_unverified: bool = True  # datasheet figures not re-read from upstream here

    def memory(self, product: str) -> int:
        """The framebuffer in GB of a product: the size its GFD name carries (NVIDIA-A100-SXM4-80GB), else the
        row's smallest part."""
        named = re.search(r"-(\d+)GB(?:-|$)", product)
        return int(named.group(1)) if named else self.memory_gb

    def matches(self, product: str) -> bool:
        """Whether a GFD product string (NVIDIA-H100-80GB-HBM3) is this GPU."""
        bare = product.removeprefix("NVIDIA-").removeprefix("Tesla-")
        return bare == self.gpu or bare.startswith(f"{self.gpu}-")


class EngineRelease(Row):
    """The oldest GPU a range of an engine's releases runs on; max None: every later release."""

    TABLE, KEY = "engines.releases", ("min",)
    min: str
    max: str | None
    min_compute_capability: str

    def contains(self, release: str) -> bool:
        return in_range(release, self.min, self.max)


class Engine(Row):
    TABLE, KEY = "engines", ("engine",)
    engine: str
    min_compute_capability: str | None
    formats: list[str]
    last_release_per_cuda_major: dict[str, str] = {}
    last_release_unverified: bool = False
    releases: list[EngineRelease] = []

    def floor(self, release: str | None) -> tuple[str | None, Row]:
        """The minimum compute capability of a release and the row that sets it (the engine's own floor for an
        unknown release or one no range covers)."""
        found = next((r for r in self.releases if release and r.contains(release)), None)
        return (found.min_compute_capability, found) if found else (self.min_compute_capability, self)


class VgpuVersion(Row):
    TABLE, KEY = "vgpu.releases", ("release",)
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


def in_range(version: str, low: str, high: str | None) -> bool:
    """Whether a version lies within [low, high], compared at the bounds' precision; high None: no upper bound."""
    key = version_key(version)
    lowest = version_key(low)
    return lowest <= key[:len(lowest)] and (high is None or key[:len(version_key(high))] <= version_key(high))


def split_tag(ref: str) -> tuple[str, str, str] | None:
    """An image reference as (repository, version, variant): "vllm/vllm-openai:v0.20.0-cu129" ->
    ("vllm/vllm-openai", "0.20.0", "cu129"); None where the tag is not a version."""
    name, _, tag = normalized(ref).split("@")[0].rpartition(":")
    found = re.fullmatch(r"v?(\d+(?:\.\d+)*(?:\.post\d+)?)(?:-(.+))?", tag)
    if not name or "/" in tag or found is None:
        return None
    return name, found.group(1), found.group(2) or ""


class RuntimeImage(Row):
    """An upstream runtime image repository over a range of tags of one variant (the tag's suffix: -cu129),
    the CUDA those tags are built with, whether the image loads the CUDA forward-compatibility libraries, and
    the engine release it ships where the tag is not that release."""

    TABLE, KEY = "runtime_images", ("repository", "variant", "min")
    repository: str
    variant: str = ""
    min: str
    max: str
    cuda: str
    cuda_compat: bool = False
    engine_release: str | None = None

    def same_image(self, name: str, variant: str) -> bool:
        path = self.repository.split("/", 1)[1]
        return variant == self.variant and (name in (self.repository, path) or name.endswith(f"/{path}"))


class ImageMatch(BaseModel):
    """The runtime image row a reference matched; assumed: the tag is newer than every row (the newest row's
    facts are assumed to carry on)."""

    model_config = ConfigDict(frozen=True)

    row: RuntimeImage
    release: str
    assumed: bool = False

    @property
    def engine_release(self) -> str:
        return self.row.engine_release or self.release


class VgpuType(Row):
    """A vGPU type's board prefix (A100D in A100D-80C), the GPU row it runs on and the board's framebuffer."""

    TABLE, KEY = "vgpu.types", ("board",)
    board: str
    gpu: str
    framebuffer_gb: int


class KnownIssue(Row):
    """A documented driver problem under MIG: listed drivers or every driver from min_driver, on the GPU rows
    named (none: any GPU), under the MIG strategies named."""

    TABLE, KEY = "gpu_operator.known_issues", ("issue",)
    issue: str
    drivers: list[str] = []
    min_driver: str | None = None
    products: list[str] = []
    mig: list[str]
    status: Literal["warn", "fail"]
    fix: str

    def hits(self, driver: str, gpu: str | None, mig: str | None) -> bool:
        listed = driver in self.drivers or (self.min_driver is not None and version_key(driver) >= version_key(
            self.min_driver))
        return listed and mig in self.mig and (not self.products or gpu in self.products)


class Setting(Row):
    """One sourced value: the host graphics mode vGPU needs, the oldest compute capability vGPU supports."""

    TABLE, KEY = "setting", ("value",)
    value: str


class KubernetesRange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min: str
    max: str

    def contains(self, version: str) -> bool:
        minor = version_key(version)[:2]
        return version_key(self.min)[:2] <= minor <= version_key(self.max)[:2]


class VksSupport(BaseModel):
    """Where a GPU Operator release is validated on VMware vSphere Kubernetes Service (the platform-support table's
    VKS, earlier "vSphere with Tanzu", column): the node OSes (pai:gpu.driver.os names: ubuntu22.04) and, where
    the column gives one, its own Kubernetes range (earlier columns list vSphere versions instead)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    os: list[str]
    kubernetes: KubernetesRange | None = None
    source: str


class OperatorRelease(Row):
    TABLE, KEY = "gpu_operator.releases", ("version",)
    version: str
    default_driver: str
    supported_branches: list[str]
    supported_branches_unverified: bool = False
    supported_drivers: list[str] = []
    kubernetes: KubernetesRange
    crds: dict[str, list[str]] | None = None
    crds_unverified: bool = False
    crds_source: str | None = None
    vks: VksSupport | None = None


def vgpu_type_name(product: str) -> str:
    """The vGPU type a GFD product names (GRID-A100-40C and NVIDIA-H100XM-80C are A100-40C and H100XM-80C)."""
    return product.removeprefix("GRID-").removeprefix("NVIDIA-")


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
    vgpu_types: list[VgpuType]
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
        """The GPU row of a GFD product: a board (NVIDIA-H100-80GB-HBM3) or, in a vGPU VM, a vGPU type
        (GRID-A100-40C: the board it runs on)."""
        board = next((g for g in self.gpus if g.matches(product)), None)
        vgpu = self.vgpu_type(product)
        return board or (next((g for g in self.gpus if g.gpu == vgpu.gpu), None) if vgpu else None)

    def vgpu_type(self, product: str) -> VgpuType | None:
        """The vGPU type row of a GFD product that names a vGPU type (GRID-A100-40C, NVIDIA-H100XM-80C,
        GRID-A100-3-20C), None for a board or an unknown name or a framebuffer larger than the board's."""
        bare = vgpu_type_name(product)
        found = re.fullmatch(r"([A-Z0-9]+)-(?:\d-)?(\d+)[ABCQ](?:ME)?", bare)
        if found is None:
            return None
        row = next((t for t in self.vgpu_types if t.board == found.group(1)), None)
        return row if row and int(found.group(2)) <= row.framebuffer_gb else None

    def product(self, product: str) -> Gpu | None:
        """The GPU row of a GFD product name the matrix knows exactly: a board's (or its MIG form,
        <product>-MIG-<profile>), or a vGPU type of a known board (GRID-A100-40C)."""
        name = MIG_SUFFIX.sub("", product)
        board = next((g for g in self.gpus if name in g.products), None)
        vgpu = self.vgpu_type(name)
        return board or (next((g for g in self.gpus if g.gpu == vgpu.gpu), None) if vgpu else None)

    def closest_products(self, product: str) -> list[str]:
        """Known product names nearest an unknown one: a bare family name (H100) gets its family's products, else
        the closest by spelling."""
        bare = product.removeprefix("NVIDIA-").removeprefix("Tesla-")
        family = next((g.products for g in self.gpus if g.gpu.lower() == bare.lower()), None)
        known = [p for g in self.gpus for p in g.products]
        return family or difflib.get_close_matches(product, known, n=1, cutoff=0.0)

    def engine(self, name: str) -> Engine | None:
        return next((e for e in self.engines if e.engine == name), None)

    def runtime_image(self, ref: str) -> ImageMatch | None:
        """The row for an image reference: within a row's range, or newer than every row of its repository and
        variant (then the newest row, assumed)."""
        split = split_tag(ref)
        if split is None:
            return None
        name, release, variant = split
        rows = [r for r in self.runtime_images if r.same_image(name, variant)]
        found = next((r for r in rows if in_range(release, r.min, r.max)), None)
        if found:
            return ImageMatch(row=found, release=release)
        newest = max(rows, key=lambda r: version_key(r.max), default=None)
        if newest and version_key(release)[:len(version_key(newest.max))] > version_key(newest.max):
            return ImageMatch(row=newest, release=release, assumed=True)
        return None

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


def _rows(value: object) -> list[dict[str, object]]:
    """A YAML list of mappings, as the loader hands it on."""
    assert isinstance(value, list)
    return value


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
        "known_issues": operator["known_issues"], "vgpu_types": [
            {"source": f"{vgpu['type_source']} ; product label: {vgpu['product_label_source']}", **row}
            for row in _rows(vgpu["types"])],
        "operator_releases": operator["releases"], "operator_upgrade_rule": operator["upgrade_rule"],
        "operator_upgrade_rule_source": operator["upgrade_rule_source"],
    })
