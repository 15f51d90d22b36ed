"""Interop rules: small functions over Facts and the matrix, each returning checks under one id.

A check's status is pass, warn, fail, or skip when a fact it needs is missing. Its message states the versions
involved; its fix says what to change; its sources list where the facts came from and the matrix rows it used.
A check that rests on a matrix value marked unverified says so in its message, and lists what is marked (the
research notes behind the value) among its sources, which `--format json` prints and the table leaves out. A check
that cannot apply to the stack (a vGPU check in datacenter mode) is a skip whose message starts "not applicable".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from components.catalog import CATALOG
from validation.facts import Facts, KubernetesFacts, NodeFacts, OperatorFacts, Record, RuntimeImageFacts
from validation.matrix import Gpu, Matrix, OperatorRelease, Row, branch_of, load_matrix, version_key

Status = Literal["pass", "warn", "fail", "skip"]
STATUSES: tuple[Status, ...] = ("pass", "warn", "fail", "skip")
NOT_APPLICABLE = "not applicable"
UNVERIFIED_SOURCE = "unverified: "
# _unverified marks what a message rests on between these; _finished moves it from the message to the sources.
_NOTE, _SEP = "\x00", "\x1f"
_NOTES = re.compile(f"{_NOTE}([^{_NOTE}]*){_NOTE}")
FAILING_PODS = {"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "Error"}


@dataclass(frozen=True)
class Check:
    id: str
    status: Status
    subject: str
    message: str
    fix: str = ""
    sources: tuple[str, ...] = field(default=())


Rule = Callable[[Facts, Matrix], list[Check]]
UpgradeRule = Callable[[Facts, Facts, Matrix], list[Check]]
RULES: dict[str, Rule] = {}
UPGRADE_RULES: dict[str, UpgradeRule] = {}


def rule(check_id: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        @functools.wraps(fn)
        def finished(facts: Facts, m: Matrix) -> list[Check]:
            return [_finished(c) for c in fn(facts, m)]
        RULES[check_id] = finished
        return finished
    return register


def upgrade_rule(check_id: str) -> Callable[[UpgradeRule], UpgradeRule]:
    def register(fn: UpgradeRule) -> UpgradeRule:
        @functools.wraps(fn)
        def finished(current: Facts, target: Facts, m: Matrix) -> list[Check]:
            return [_finished(c) for c in fn(current, target, m)]
        UPGRADE_RULES[check_id] = finished
        return finished
    return register


def _finished(check: Check) -> Check:
    """The research notes an unverified mark rests on leave the message for the sources."""
    notes = [n for found in _NOTES.findall(check.message) for n in found.split(_SEP)]
    if not notes:
        return check
    sources = (*check.sources, *(f"{UNVERIFIED_SOURCE}{n}" for n in notes if f"{UNVERIFIED_SOURCE}{n}"
                                 not in check.sources))
    return replace(check, message=_NOTES.sub("", check.message), sources=tuple(dict.fromkeys(sources)))


def run_checks(facts: Facts, matrix: Matrix | None = None) -> list[Check]:
    """Every rule over one set of facts."""
    m = matrix or load_matrix()
    return [check for fn in RULES.values() for check in fn(facts, m)]


def run_upgrade_checks(current: Facts, target: Facts, matrix: Matrix | None = None) -> list[Check]:
    """The target's own checks, then every upgrade rule of the target against what runs now."""
    m = matrix or load_matrix()
    return run_checks(target, m) + [check for fn in UPGRADE_RULES.values() for check in fn(current, target, m)]


def allow(checks: list[Check], allowed: Iterable[str]) -> list[Check]:
    """Failures of the check ids in `allowed` (pai:validation.allowFailures) downgraded to warnings."""
    ids = set(allowed)
    return [replace(c, status="warn", message=f"{c.message} (failure allowed by pai:validation.allowFailures)")
            if c.status == "fail" and c.id in ids else c for c in checks]


def check_ids() -> list[str]:
    return [*RULES, *UPGRADE_RULES]


# ---- helpers -------------------------------------------------------------------------------------------------

def _sources(facts: Facts, records: Iterable[Record], rows: Iterable[Row | None] = ()) -> tuple[str, ...]:
    """Origins of the facts used (with where each source read) and the sources of the matrix rows."""
    seen: list[str] = []
    for record in records:
        where = facts.sources.get(record.origin)
        text = f"{record.origin}: {where}" if where else record.origin
        if text not in seen:
            seen.append(text)
    for row in rows:
        if row is not None and _cite(row) not in seen:
            seen.append(_cite(row))
    return tuple(seen)


def _cite(row: Row) -> str:
    """A matrix row as a check names it: "matrix: <table> <key>: <source>" (the report splits it)."""
    return f"matrix: {row.label}: {row.source}"


def _unverified(rows: Iterable[Row | None], *marks: str | None) -> str:
    """The note a message carries when it rests on a matrix value marked unverified: the rows marked, and any
    other unverified value the caller names (its source or what it is)."""
    marked = [r.source for r in rows if r is not None and r.unverified] + [m for m in marks if m]
    if marked:
        return f" (rests on matrix data marked unverified){_NOTE}{_SEP.join(dict.fromkeys(marked))}{_NOTE}"
    return ""


def _mark(unverified: bool, what: str | None) -> str | None:
    return what if unverified else None


def _skip(check_id: str, subject: str, missing: str) -> list[Check]:
    return [Check(check_id, "skip", subject, f"not checked: {missing}")]


def _vgpu_not_applicable(check_id: str, subject: str, facts: Facts) -> list[Check] | None:
    """A vGPU check on a stack whose driver is the data-center driver, or that has no GPU driver: not applicable
    (None where it may apply: vgpu mode, or a preinstalled driver that may be a vGPU guest driver)."""
    driver = facts.driver
    if driver is None:
        return [Check(check_id, "skip", subject, f"{NOT_APPLICABLE}: no GPU driver is configured or was read")]
    if driver.mode == "datacenter":
        return [Check(check_id, "skip", subject, f"{NOT_APPLICABLE}: the driver mode is datacenter, not vgpu")]
    return None


def _ge(a: str, b: str) -> bool:
    return version_key(a) >= version_key(b)


def _node_list(nodes: list[NodeFacts], limit: int = 3) -> str:
    """The first few node names, and how many there are when there are more."""
    names = [n.name for n in nodes]
    return ", ".join(names[:limit]) + (f", ... ({len(names)} nodes)" if len(names) > limit else "")


def _driver_groups(facts: Facts) -> dict[str, list[NodeFacts]]:
    """Nodes with a known driver version, grouped by it."""
    groups: dict[str, list[NodeFacts]] = {}
    for node in facts.nodes:
        if node.driver_version:
            groups.setdefault(node.driver_version, []).append(node)
    return groups


def _installable(m: Matrix) -> list[OperatorRelease]:
    """The GPU Operator releases this project can install (components/catalog.yaml) that the matrix knows, oldest
    first: the only ones a fix may name."""
    pinned = CATALOG.chart("gpu-operator").versions
    return sorted((r for r in m.operator_releases if r.version in pinned), key=lambda r: version_key(r.version))


def _none_installable(what: str, m: Matrix) -> str:
    names = ", ".join(r.version for r in _installable(m))
    return f"no GPU Operator release this project installs ({names}) {what}"


def _products(nodes: Iterable[NodeFacts]) -> list[str]:
    return sorted({p for n in nodes for p in n.products})


# ---- CUDA of each runtime image vs the node driver -----------------------------------------------------------

@rule("cuda-driver")
def cuda_driver(facts: Facts, m: Matrix) -> list[Check]:
    """Each GPU runtime image's CUDA against each node driver: native, minor-version compatibility, or forward
    compatibility (data-center GPUs only, from a long-term support base branch)."""
    return _cuda_checks("cuda-driver", facts, facts.runtime_images, m)


def _cuda_checks(check_id: str, facts: Facts, images: list[RuntimeImageFacts], m: Matrix) -> list[Check]:
    if not images:
        return _skip(check_id, "runtime images", "no runtime image serves a model on GPU")
    groups = _driver_groups(facts)
    if not groups:
        return _skip(check_id, "runtime images", "no node driver version is known (preinstalled driver, no live facts)")
    checks = []
    for image in images:
        if image.cuda is None:
            checks += _skip(check_id, image.image, "the CUDA version this image is built with is not in the catalog")
            continue
        for driver, nodes in groups.items():
            checks.append(_cuda_check(check_id, facts, image, driver, nodes, m))
    return checks


def _cuda_check(check_id: str, facts: Facts, image: RuntimeImageFacts, driver: str, nodes: list[NodeFacts],
                m: Matrix) -> Check:
    cuda = image.cuda
    assert cuda is not None
    subject = f"{image.image} on {_node_list(nodes)}"
    toolkit, major = m.toolkit(cuda), m.major(cuda)
    match = m.runtime_image(image.image)
    native = toolkit.min_driver if toolkit else None
    rows: list[Row | None] = [toolkit, major, match.row if match else None]
    if native is None and major is None:
        return Check(check_id, "skip", subject, f"not checked: CUDA {cuda} is not in the matrix",
                     sources=_sources(facts, [image, *nodes]))
    need = native or (major.min_driver if major else "")
    built = f"{image.image} is built with CUDA {cuda}, which needs driver >= {need}"
    note = " (the image's CUDA version is marked unverified in the catalog)" if image.unverified else ""
    if image.assumed:
        note += (f" (CUDA {cuda} is assumed: the tag is newer than every release of the image in the matrix, "
                 "so the newest known release's CUDA is used)")
    runs = f"{_node_list(nodes)} run{'s' if len(nodes) == 1 else ''} {driver}"
    fix = _cuda_fix(image, need, driver, m)
    products = _products(nodes)
    gpus = [m.gpu(p) for p in products]
    if native and _ge(driver, native):
        status: Status = "warn" if image.assumed else "pass"
        return Check(check_id, status, subject, f"{built}; {runs}{note}{_unverified(rows)}",
                     "add the image's release to validation/data/runtime_images.yaml" if image.assumed else "",
                     _sources(facts, [image, *nodes], rows))
    consumer = [p for p, g in zip(products, gpus, strict=True) if g is not None and not g.datacenter]
    if major and _ge(driver, major.min_driver):
        if match and match.row.cuda_compat and consumer:
            return Check(check_id, "fail", subject,
                         f"{built}; {runs}: the image loads its cuda-compat libraries on a driver older than its "
                         f"CUDA, and {', '.join(consumer)} is not a data-center GPU: CUDA error 804 (forward "
                         f"compatibility was attempted on non supported HW){note}{_unverified(rows)}",
                         fix, _sources(facts, [image, *nodes], [*rows, *gpus]))
        return Check(check_id, "warn", subject,
                     f"{built}; {runs}: it runs only through CUDA {major.major}.x minor-version compatibility "
                     f"(driver >= {major.min_driver}), without features that need the newer driver (PTX JIT)"
                     f"{note}{_unverified(rows)}", fix, _sources(facts, [image, *nodes], rows))
    fc = m.forward_compatibility
    branch = m.branch(driver)
    datacenter = bool(gpus) and all(g is not None and g.datacenter for g in gpus)
    rows += [branch, *gpus]
    resting = False
    if not datacenter:
        unknown = [p for p, g in zip(products, gpus, strict=True) if g is None]
        which = [f"{', '.join(consumer)} is not a data-center GPU" if consumer else "",
                 f"{', '.join(unknown)} is not in the matrix" if unknown else "",
                 "" if products else "the GPU product is unknown"]
        why = ("forward compatibility runs only on data-center GPUs (else CUDA error 804): "
               + "; ".join(w for w in which if w))
    elif branch is None or branch.type not in fc.branch_types:
        kind = f"a {branch.type} branch" if branch else "not in the matrix"
        why = (f"forward compatibility needs a base driver on a {' or '.join(fc.branch_types)} branch and "
               f"{branch_of(driver)} is {kind}")
        resting = fc.branch_types_unverified
    else:
        return Check(check_id, "warn", subject,
                     f"{built}; {runs}: it runs only through CUDA forward compatibility (the cuda-compat package "
                     f"in the image) on data-center GPUs ({', '.join(products)}){note}"
                     f"{_unverified(rows, _mark(fc.branch_types_unverified, fc.branch_types_source))}", fix,
                     _sources(facts, [image, *nodes], rows))
    resting_on = _unverified(rows, _mark(resting, fc.branch_types_source))
    return Check(check_id, "fail", subject, f"{built}; {runs}: {why}{note}{resting_on}", fix,
                 _sources(facts, [image, *nodes], rows))


def _cuda_fix(image: RuntimeImageFacts, need: str, driver: str, m: Matrix) -> str:
    fix = f"upgrade the driver to the {branch_of(need)} branch (>= {need})"
    branch = m.branch(driver)
    engine = m.engine(image.engine)
    if branch and engine and str(branch.cuda_major) in engine.last_release_per_cuda_major:
        pin = engine.last_release_per_cuda_major[str(branch.cuda_major)]
        fix += f" or pin {image.engine} <= {pin} (CUDA {branch.cuda_major}.x images)"
    elif branch:
        fix += f" or use an image built with CUDA {branch.cuda_major}.x"
    return fix


# ---- GPU products: the names the config selects nodes by -------------------------------------------------------

@rule("gpu-product")
def gpu_product(facts: Facts, m: Matrix) -> list[Check]:
    """Each GPU product the config names (pai:gpu.products, pai:models[].product) against the GFD product names the
    matrix knows: a typo selects no node and no Kueue flavour, and the checks that read the product match nothing."""
    named = [p for n in facts.nodes if n.origin == "config" for p in n.products]
    named += [md.product for md in facts.models if md.product]
    products = list(dict.fromkeys(named))
    if not products:
        return _skip("gpu-product", "GPU products", "the config names no GPU product")
    checks = []
    for product in products:
        gpu = m.product(product)
        records: list[Record] = [n for n in facts.nodes if n.origin == "config" and product in n.products]
        records += [md for md in facts.models if md.product == product]
        if gpu is not None:
            checks.append(Check("gpu-product", "pass", product, f"{product} is a GPU Feature Discovery product name "
                                f"({gpu.gpu}, {gpu.arch}){_unverified([], _mark(gpu.products_unverified, product))}",
                                "", _sources(facts, records)))
            continue
        closest = m.closest_products(product)
        checks.append(Check(
            "gpu-product", "warn", product,
            f"{product} is not a GPU Feature Discovery product name the matrix knows; the closest: "
            f"{', '.join(closest)}: a product no node carries selects no node and no Kueue flavour",
            "write the product exactly as the nodes' nvidia.com/gpu.product label has it (kubectl get nodes -L "
            "nvidia.com/gpu.product)", _sources(facts, records)))
    return checks


# ---- engines: compute capability, model format ---------------------------------------------------------------

@rule("engine-compute-capability")
def engine_compute_capability(facts: Facts, m: Matrix) -> list[Check]:
    """Each GPU model's engine (and its image's CUDA major) against the compute capability of its GPUs."""
    gpu_models = [model for model in facts.models if model.gpus > 0]
    if not gpu_models:
        return _skip("engine-compute-capability", "models", "no model runs on GPU")
    checks = []
    for model in gpu_models:
        products = [model.product] if model.product else _products(facts.nodes)
        engine = m.engine(model.engine)
        image = next((i for i in facts.runtime_images if i.engine == model.engine), None)
        major = m.major(image.cuda) if image and image.cuda else None
        match = m.runtime_image(image.image) if image else None
        release = match.engine_release if match else None
        floor, row = engine.floor(release) if engine else (None, None)
        who = f"{model.engine} {release}" if release and row is not engine else model.engine
        needs = [(who, floor, row),
                 (f"CUDA {major.major}.x" if major else "", major.min_compute_capability if major else None, major)]
        needs = [n for n in needs if n[1] is not None]
        if not products:
            checks += _skip("engine-compute-capability", f"model {model.name}", "no GPU product is known")
            continue
        for product in products:
            checks.append(_cc_check(facts, model.name, model.engine, product, needs, m))
    return checks


def _cc_check(facts: Facts, model: str, engine: str, product: str,
              needs: Sequence[tuple[str, str | None, Row | None]], m: Matrix) -> Check:
    subject = f"model {model} ({engine}) on {product}"
    nodes = [n for n in facts.nodes if product in n.products]
    seen = next((n.compute_capability for n in nodes if n.compute_capability), None)
    gpu = m.gpu(product)
    cc = seen or (gpu.cc if gpu else None)
    if cc is None:
        return Check("engine-compute-capability", "skip", subject,
                     f"not checked: the compute capability of {product} is unknown (not in the matrix)")
    if not needs:
        return Check("engine-compute-capability", "pass", subject,
                     f"{engine} has no minimum compute capability in the matrix; {product} is {cc}")
    who, required, _ = max(needs, key=lambda n: version_key(n[1] or "0"))
    assert required is not None
    rows: list[Row | None] = [r for _, _, r in needs] + ([] if seen else [gpu])
    text = f"{who} needs compute capability >= {required}; {product} is {cc}{_unverified(rows)}"
    records: list[Record] = [*nodes] or [next(md for md in facts.models if md.name == model)]
    if version_key(cc) >= version_key(required):
        return Check("engine-compute-capability", "pass", subject, text, "", _sources(facts, records, rows))
    return Check("engine-compute-capability", "fail", subject, text,
                 f"serve {model} on a GPU with compute capability >= {required} (pai:models[].product) or use an "
                 f"image built with an older CUDA major", _sources(facts, records, rows))


@rule("engine-format")
def engine_format(facts: Facts, m: Matrix) -> list[Check]:
    """Each model's weight format against the formats its engine loads."""
    if not facts.models:
        return _skip("engine-format", "models", "no model is configured")
    checks = []
    for model in facts.models:
        engine = m.engine(model.engine)
        subject = f"model {model.name} ({model.engine}, {model.format})"
        if engine is None:
            checks.append(Check("engine-format", "skip", subject, f"not checked: engine {model.engine} is not in "
                                "the matrix"))
            continue
        ok = model.format in engine.formats
        text = f"{model.engine} loads {', '.join(engine.formats)}; {model.name} is {model.format}"
        checks.append(Check("engine-format", "pass" if ok else "fail", subject, text,
                            "" if ok else f"convert the weights to {engine.formats[0]} or serve them with an engine "
                            f"that loads {model.format}", _sources(facts, [model], [engine])))
    return checks


# ---- GPU Operator: Kubernetes range, driver branch -----------------------------------------------------------

@rule("operator-kubernetes")
def operator_kubernetes(facts: Facts, m: Matrix) -> list[Check]:
    """The GPU Operator release in force against the cluster's Kubernetes minor version."""
    operator, kube = facts.operator_version, facts.kubernetes
    if operator is None or kube is None:
        return _skip("operator-kubernetes", "gpu-operator", "no GPU Operator or no Kubernetes version is known")
    return [_operator_kubernetes("operator-kubernetes", facts, operator, kube, m)]


def _operator_kubernetes(check_id: str, facts: Facts, operator: OperatorFacts, kube: KubernetesFacts,
                         m: Matrix) -> Check:
    version, k8s = operator.version, kube.version
    subject = f"gpu-operator {version} on Kubernetes {k8s}"
    release = m.operator(version)
    if release is None:
        return Check(check_id, "warn", subject, f"gpu-operator {version} is not in the matrix",
                     "add the release to validation/data/gpu_operator.yaml", _sources(facts, [operator, kube]))
    rng = release.kubernetes
    text = f"gpu-operator {version} supports Kubernetes {rng.min}-{rng.max}; the cluster is {k8s}"
    if rng.contains(k8s):
        return Check(check_id, "pass", subject, text + _unverified([release]), "",
                     _sources(facts, [operator, kube], [release]))
    fits = [r for r in _installable(m) if r.kubernetes.contains(k8s)]
    ranges = ", ".join(f"{r.version}: {r.kubernetes.min}-{r.kubernetes.max}" for r in _installable(m))
    fix = (f"use gpu-operator {fits[-1].version} (Kubernetes {fits[-1].kubernetes.min}-{fits[-1].kubernetes.max})"
           if fits else _none_installable(f"supports Kubernetes {k8s} ({ranges}): run a Kubernetes version in "
                                          "one of those ranges", m))
    return Check(check_id, "fail", subject, text + _unverified([release]), fix,
                 _sources(facts, [operator, kube], [release]))


@rule("operator-driver-branch")
def operator_driver_branch(facts: Facts, m: Matrix) -> list[Check]:
    """Each driver version in use (or planned) against the branches the GPU Operator release supports."""
    operator = facts.operator_version
    groups = _driver_groups(facts)
    if operator is None or not groups:
        return _skip("operator-driver-branch", "gpu-operator", "no GPU Operator or no driver version is known")
    release = m.operator(operator.version)
    if release is None:
        return [Check("operator-driver-branch", "warn", f"gpu-operator {operator.version}",
                      f"gpu-operator {operator.version} is not in the matrix",
                      "add the release to validation/data/gpu_operator.yaml", _sources(facts, [operator]))]
    datacenter = facts.driver is not None and facts.driver.mode == "datacenter"
    checks = []
    for driver, nodes in groups.items():
        subject = f"driver {driver} with gpu-operator {operator.version}"
        sources = _sources(facts, [operator, *nodes], [release])
        note = _unverified([release], _mark(release.supported_branches_unverified,
                                                  f"supported branches of {release.version}"))
        branches = ", ".join(release.supported_branches)
        if branch_of(driver) not in release.supported_branches:
            checks.append(Check("operator-driver-branch", "fail", subject,
                                f"gpu-operator {operator.version} supports driver branches {branches}; "
                                f"{_node_list(nodes)} run {driver} ({branch_of(driver)}){note}",
                                f"use a driver on {branches} (the release's default is {release.default_driver})"
                                + _branch_releases(branch_of(driver), m), sources))
        elif datacenter and release.supported_drivers and driver not in release.supported_drivers:
            checks.append(Check("operator-driver-branch", "warn", subject,
                                f"{branch_of(driver)} is supported by gpu-operator {operator.version}, but {driver} "
                                f"is not one of its listed data-center driver containers "
                                f"({', '.join(release.supported_drivers)}){note}",
                                f"use a listed driver, e.g. {release.default_driver}", sources))
        else:
            checks.append(Check("operator-driver-branch", "pass", subject,
                                f"gpu-operator {operator.version} supports driver branches {branches}; "
                                f"{driver} is {branch_of(driver)}{note}", "", sources))
    return checks


def _branch_releases(branch: str, m: Matrix) -> str:
    """The newest installable operator release that supports a driver branch, as the second half of a fix."""
    fits = [r.version for r in _installable(m) if branch in r.supported_branches]
    if fits:
        return f" or gpu-operator {fits[-1]}, which supports {branch}"
    return f"; {_none_installable(f'supports {branch}', m)}"


# ---- vGPU: host manager vs guest driver, no data-center driver in a vGPU guest -------------------------------

@rule("vgpu-host-guest")
def vgpu_host_guest(facts: Facts, m: Matrix) -> list[Check]:
    """Each ESXi host's vGPU manager against each guest driver (vGPU mode)."""
    return _host_guest_checks("vgpu-host-guest", facts, facts, m)


def _host_guest_checks(check_id: str, host_facts: Facts, guest_facts: Facts, m: Matrix) -> list[Check]:
    not_applicable = _vgpu_not_applicable(check_id, "vGPU", guest_facts)
    if not_applicable:
        return not_applicable
    hosts = [h for h in host_facts.hosts if h.vgpu_manager_version]
    vgpu = guest_facts.driver is not None and guest_facts.driver.mode == "vgpu"
    guests = _driver_groups(guest_facts) if vgpu else {}
    if not hosts or not guests:
        missing = "no vGPU host manager version is known" if not hosts else "the driver mode is not vgpu"
        return _skip(check_id, "vGPU", missing)
    by_version: dict[str, list[str]] = {}
    for host in hosts:
        assert host.vgpu_manager_version is not None
        by_version.setdefault(host.vgpu_manager_version, []).append(host.name)
    checks = []
    for manager, names in by_version.items():
        for guest, nodes in guests.items():
            status, text, fix, rows = _host_guest(manager, guest, m)
            subject = f"host manager {manager} ({', '.join(names[:3])}) / guest driver {guest}"
            records: list[Record] = [h for h in hosts if h.vgpu_manager_version == manager]
            checks.append(Check(check_id, status, subject, text, fix,
                                _sources(host_facts, records) + _sources(guest_facts, nodes, rows)))
    return checks


def _host_guest(manager: str, guest: str, m: Matrix) -> tuple[Status, str, str, list[Row | None]]:
    host_branch, guest_branch = branch_of(manager), branch_of(guest)
    host_release, guest_release = m.vgpu_branch(host_branch), m.vgpu_branch(guest_branch)
    host_row, guest_row = m.vgpu_version(host_manager=manager), m.vgpu_version(guest=guest)
    rows: list[Row | None] = [host_row, guest_row]
    base = f"host vGPU manager {manager} ({host_branch}) with guest driver {guest} ({guest_branch})"
    paired = f" ({host_row.linux_guest})" if host_row and host_row.linux_guest else ""
    matching = f"install the guest driver of the host's vGPU release{paired} in the guest driver image"
    types = [_mark(r.branch_type_unverified, f"{r.branch} is {r.branch_type}") for r in (host_release, guest_release)
             if r]
    note = _unverified(rows, *types)
    rule_src = f"rule: {m.vgpu_compatibility.source}"
    if version_key(guest)[0] > version_key(manager)[0]:
        return ("fail", f"{base}: a guest driver newer than the host manager's branch never loads{note}",
                f"upgrade the ESXi hosts' vGPU manager to {guest_branch} or {matching}", rows)
    if host_branch == guest_branch:
        if guest_row and guest_row.host_manager == manager:
            return "pass", f"{base}: both from vGPU {guest_row.release}{note}", "", [guest_row]
        which = (f"host from vGPU {host_row.release}, guest from vGPU {guest_row.release}" if host_row and guest_row
                 else "the exact vGPU releases are not in the matrix")
        return ("warn", f"{base}: same branch, different releases ({which}); vGPU 19 notes list only the same "
                f"release, older notes any release of the branch{_unverified(rows, m.vgpu_compatibility.source)}",
                matching, rows)
    order = sorted((r for r in m.vgpu_releases), key=lambda r: int(r.branch[1:]))
    branches = [r.branch for r in order]
    if host_branch not in branches or guest_branch not in branches:
        return "skip", f"not checked: {base}: a branch is not in the vGPU matrix ({rule_src})", "", rows
    h, g = branches.index(host_branch), branches.index(guest_branch)
    if g == h - 1:
        return ("pass", f"{base}: a manager serves guests of the previous branch, with the features both "
                f"support{note}", "", rows)
    lts = [r.branch for r in order if r.branch_type == "LTSB"]
    host_lts = order[h].branch_type == "LTSB" and order[g].branch_type == "LTSB"
    if host_lts and lts.index(host_branch) - lts.index(guest_branch) == 1:
        return ("pass", f"{base}: a long-term support manager serves guests of the previous LTS branch{note}", "",
                rows)
    return ("fail", f"{base}: the guest is more than one branch behind the host manager and not on the previous "
            f"LTS branch{note}", matching, rows)


@rule("vgpu-no-datacenter-driver")
def vgpu_no_datacenter_driver(facts: Facts, m: Matrix) -> list[Check]:
    """A vGPU guest needs the vGPU (GRID) guest driver: never the data-center driver image, and never the
    datacenter driver mode on nodes that are vGPU VMs."""
    driver = facts.driver
    if driver is None:
        return _skip("vgpu-no-datacenter-driver", "driver", "the driver mode is not known")
    vgpu_nodes = [n for n in facts.nodes if n.vgpu_profile]
    vgpu_hosts = [h for h in facts.hosts if h.graphics_mode == "sharedDirect"]
    subject = f"driver mode {driver.mode}"
    if driver.mode == "vgpu":
        image = driver.image or ""
        if image.split("@")[0].split(":")[0].endswith("nvcr.io/nvidia/driver") or image.endswith("/nvidia/driver"):
            return [Check("vgpu-no-datacenter-driver", "fail", subject,
                          f"vgpu mode installs {image}, the data-center driver, which does not load in a vGPU guest",
                          "build the vGPU guest driver image from the *-grid.run driver and set pai:gpu.driver.image "
                          "to it", _sources(facts, [driver]))]
        return [Check("vgpu-no-datacenter-driver", "pass", subject, f"vgpu mode installs the guest driver image "
                      f"{image or '(unset)'}", "", _sources(facts, [driver]))]
    if driver.mode == "datacenter" and (vgpu_nodes or vgpu_hosts):
        seen = (f"nodes {_node_list(vgpu_nodes)} have vGPU profile {vgpu_nodes[0].vgpu_profile}" if vgpu_nodes
                else f"ESXi hosts {', '.join(h.name for h in vgpu_hosts[:3])} run graphics mode sharedDirect (vGPU)")
        return [Check("vgpu-no-datacenter-driver", "fail", subject,
                      f"{seen}, but the driver mode is datacenter: the data-center driver does not load in a vGPU "
                      "guest, and vGPU and data-center drivers cannot share a cluster",
                      "set pai:gpu.driver.mode to vgpu with the customer-built guest driver image",
                      _sources(facts, [driver, *vgpu_nodes, *vgpu_hosts]))]
    if not any(n.origin == "vcenter" for n in facts.nodes):
        return _skip("vgpu-no-datacenter-driver", subject, "no node VM was read from vCenter")
    return [Check("vgpu-no-datacenter-driver", "pass", subject, "no node VM has a vGPU profile", "",
                  _sources(facts, [driver]))]


@rule("vgpu-compute-capability")
def vgpu_compute_capability(facts: Facts, m: Matrix) -> list[Check]:
    """vGPU through the GPU Operator needs Turing or newer."""
    products = _products(facts.nodes)
    not_applicable = _vgpu_not_applicable("vgpu-compute-capability", "vGPU", facts)
    if not_applicable:
        return not_applicable
    if facts.driver is None or facts.driver.mode != "vgpu" or not products:
        return _skip("vgpu-compute-capability", "vGPU", "the driver mode is not vgpu or no GPU product is known")
    minimum = m.vgpu_min_compute_capability
    checks = []
    for product in products:
        gpu = m.gpu(product)
        subject = f"vGPU on {product}"
        if gpu is None:
            checks.append(Check("vgpu-compute-capability", "skip", subject, f"not checked: {product} is not in the "
                                "matrix"))
            continue
        ok = version_key(gpu.cc) >= version_key(minimum.value)
        checks.append(Check(
            "vgpu-compute-capability", "pass" if ok else "fail", subject,
            f"the GPU Operator runs vGPU on compute capability >= {minimum.value} (Turing); {product} is {gpu.cc} "
            f"({gpu.arch}){_unverified([gpu, minimum])}",
            "" if ok else "use the data-center driver (passthrough) on this GPU, or Turing or newer GPUs for vGPU",
            _sources(facts, [facts.driver], [gpu, minimum])))
    return checks


@rule("vgpu-host-graphics")
def vgpu_host_graphics(facts: Facts, m: Matrix) -> list[Check]:
    """ESXi hosts serve vGPU only in the Shared Direct graphics mode."""
    hosts = [h for h in facts.hosts if h.graphics_mode]
    not_applicable = _vgpu_not_applicable("vgpu-host-graphics", "ESXi hosts", facts)
    if not_applicable:
        return not_applicable
    if facts.driver is None or facts.driver.mode != "vgpu" or not hosts:
        return _skip("vgpu-host-graphics", "ESXi hosts", "the driver mode is not vgpu or no host graphics mode was "
                     "read from vCenter")
    want = m.vgpu_host_graphics
    return [Check("vgpu-host-graphics", "pass" if h.graphics_mode == want.value else "fail", f"ESXi host {h.name}",
                  f"vGPU needs host graphics mode {want.value}; {h.name} is {h.graphics_mode}{_unverified([want])}",
                  "" if h.graphics_mode == want.value else "set the host's default graphics type to Shared Direct "
                  "(Host > Configure > Graphics) and restart Xorg on the host", _sources(facts, [h], [want]))
            for h in hosts]


def _gpus_by_driver(facts: Facts, m: Matrix) -> Iterator[tuple[str, str, Gpu, list[NodeFacts]]]:
    """(driver, product, GPU row, nodes) for each GPU product in the matrix on each driver in use."""
    for driver, nodes in _driver_groups(facts).items():
        for product in _products(nodes):
            gpu = m.gpu(product)
            if gpu is not None:
                yield driver, product, gpu, [n for n in nodes if product in n.products]


@rule("gpu-driver-minimum")
def gpu_driver_minimum(facts: Facts, m: Matrix) -> list[Check]:
    """GPUs the GPU Operator documents a minimum driver for (B200, RTX PRO 6000 Blackwell)."""
    checks = []
    for driver, product, gpu, on in _gpus_by_driver(facts, m):
        if gpu.min_driver is not None:
            ok = _ge(driver, gpu.min_driver)
            checks.append(Check("gpu-driver-minimum", "pass" if ok else "fail", f"{product} on driver {driver}",
                                f"{product} needs driver >= {gpu.min_driver}; {_node_list(on)} run {driver}"
                                f"{_unverified([gpu])}", "" if ok else f"upgrade the driver to >= {gpu.min_driver}",
                                _sources(facts, on, [gpu])))
    return checks or _skip("gpu-driver-minimum", "GPUs", "no GPU with a documented minimum driver")


@rule("gpu-driver-ceiling")
def gpu_driver_ceiling(facts: Facts, m: Matrix) -> list[Check]:
    """GPUs whose last supported driver branch is older than the driver in use (Maxwell, Pascal, Volta: R580)."""
    checks = []
    for driver, product, gpu, on in _gpus_by_driver(facts, m):
        if gpu.last_branch is not None:
            ok = version_key(driver)[0] <= int(gpu.last_branch[1:])
            text = (f"{product} ({gpu.arch}) is supported up to the {gpu.last_branch} driver branch; "
                    f"{_node_list(on)} run {driver} ({branch_of(driver)}){_unverified([gpu])}")
            checks.append(Check("gpu-driver-ceiling", "pass" if ok else "fail", f"{product} on driver {driver}", text,
                                "" if ok else _ceiling_fix(facts, gpu.last_branch, m),
                                (*_sources(facts, on, [gpu]),
                                 f"matrix: {gpu.label} last_branch: {gpu.last_branch_source}")))
    return checks or _skip("gpu-driver-ceiling", "GPUs", "no GPU with a last supported driver branch is in use")


def _ceiling_fix(facts: Facts, last_branch: str, m: Matrix) -> str:
    """Pin the newest driver of the last branch the operator release lists."""
    release = m.operator(facts.operator_version.version) if facts.operator_version else None
    listed = sorted((d for d in (release.supported_drivers if release else [])
                     if version_key(d)[0] <= int(last_branch[1:])), key=version_key)
    pin = f"pin pai:gpu.driver.version to {listed[-1]}" if listed else f"pin a {last_branch} driver"
    return f"{pin} (the {last_branch} branch), or move the workload to Turing or newer GPUs"


@rule("driver-known-issues")
def driver_known_issues(facts: Facts, m: Matrix) -> list[Check]:
    """Driver versions with a documented problem under the node's MIG strategy, on the GPUs it names."""
    checks = []
    for driver, nodes in _driver_groups(facts).items():
        for issue in m.known_issues:
            hit = [n for n in nodes if any(issue.hits(driver, _gpu_name(p, m), n.mig_mode) for p in n.products)]
            if hit:
                checks.append(Check("driver-known-issues", issue.status,
                                    f"driver {driver} with MIG {', '.join(sorted({str(n.mig_mode) for n in hit}))}",
                                    f"driver {driver} on {_node_list(hit)} ({', '.join(_products(hit))}): "
                                    f"{issue.issue}{_unverified([issue])}", issue.fix, _sources(facts, hit, [issue])))
    if checks:
        return checks
    if not _driver_groups(facts):
        return _skip("driver-known-issues", "drivers", "no driver version is known")
    return [Check("driver-known-issues", "pass", "drivers", "no known issue matches the drivers, GPUs and MIG "
                  "strategies in use", "", _sources(facts, [n for ns in _driver_groups(facts).values() for n in ns],
                                                    m.known_issues))]


def _gpu_name(product: str, m: Matrix) -> str | None:
    gpu = m.gpu(product)
    return gpu.gpu if gpu else None


@rule("vgpu-products")
def vgpu_products(facts: Facts, m: Matrix) -> list[Check]:
    """GPU products against the driver mode: in a vGPU VM GPU Feature Discovery labels the vGPU type
    (GRID-A100-40C), so a stack in vgpu mode must name vGPU types, and one in datacenter mode none."""
    driver = facts.driver
    products = _products(facts.nodes)
    if driver is None or driver.mode == "preinstalled" or not products:
        return _skip("vgpu-products", "GPU products", "the driver mode is not vgpu or datacenter, or no GPU product "
                     "is known")
    checks = []
    for product in products:
        vgpu, gpu = m.vgpu_type(product), m.gpu(product)
        nodes = [n for n in facts.nodes if product in n.products]
        subject = f"{product} in {driver.mode} mode"
        rows: list[Row | None] = [vgpu, gpu]
        if gpu is None:
            checks.append(Check("vgpu-products", "skip", subject, f"not checked: {product} is neither a GPU nor a "
                                "vGPU type in the matrix"))
        elif driver.mode == "vgpu" and vgpu is None:
            types = [f"GRID-{t.board}-{t.framebuffer_gb}C" for t in m.vgpu_types if t.gpu == gpu.gpu]
            checks.append(Check("vgpu-products", "fail", subject,
                                f"{product} is a board name, but in a vGPU VM GPU Feature Discovery labels "
                                "nvidia.com/gpu.product with the vGPU type, so it selects no node",
                                f"name the vGPU type the VMs get in pai:gpu.products, e.g. {', '.join(types[:3])}",
                                _sources(facts, nodes, rows)))
        elif driver.mode == "datacenter" and vgpu is not None:
            checks.append(Check("vgpu-products", "fail", subject,
                                f"{product} is a vGPU type ({vgpu.gpu}, {vgpu.framebuffer_gb} GB board): those nodes "
                                "are vGPU VMs, where the data-center driver does not load",
                                "set pai:gpu.driver.mode to vgpu, or name the board product for passthrough nodes",
                                _sources(facts, nodes, rows)))
        else:
            what = (f"vGPU type on {vgpu.gpu} (compute capability {gpu.cc}, {vgpu.framebuffer_gb} GB board)" if vgpu
                    else f"a {gpu.gpu} board")
            checks.append(Check("vgpu-products", "pass", subject, f"{product} is a {what}; {driver.mode} mode labels "
                                "it so", "", _sources(facts, nodes, rows)))
    return checks


# ---- live state: ClusterPolicy, driver and validator pods, smoke probe ---------------------------------------

@rule("cluster-policy")
def cluster_policy(facts: Facts, m: Matrix) -> list[Check]:
    """The GPU Operator's ClusterPolicy reports ready."""
    if not facts.cluster_policies:
        return _skip("cluster-policy", "ClusterPolicy", "no ClusterPolicy was read from the cluster")
    return [Check("cluster-policy", "pass" if p.state == "ready" else "fail", f"ClusterPolicy {p.name}",
                  f"ClusterPolicy {p.name} is {p.state or 'without a state'}",
                  "" if p.state == "ready" else "look at the driver and validator pods in the gpu-operator namespace",
                  _sources(facts, [p])) for p in facts.cluster_policies]


@rule("driver-pods")
def driver_pods(facts: Facts, m: Matrix) -> list[Check]:
    """Driver and validator pods are ready, none crash-looping or failing to pull."""
    pods = [p for p in facts.pods if p.component in ("driver", "validator")]
    if not pods:
        return _skip("driver-pods", "driver pods", "no driver or validator pod was read from the cluster")
    bad = [p for p in pods if not p.ready or p.waiting_reason in FAILING_PODS]
    checks = [Check("driver-pods", "fail", f"pod {p.namespace}/{p.name}",
                    f"{p.component} pod {p.name} on {p.node or 'no node'} is "
                    f"{p.waiting_reason or p.phase or 'not ready'} ({p.restarts} restarts)",
                    "read its logs (kubectl logs --previous); a driver that does not load is often a vGPU host/guest "
                    "or kernel mismatch", _sources(facts, [p])) for p in bad]
    if not bad:
        checks.append(Check("driver-pods", "pass", "driver pods", f"{len(pods)} driver and validator pods are ready",
                            "", _sources(facts, pods)))
    return checks


@rule("smoke")
def smoke(facts: Facts, m: Matrix) -> list[Check]:
    """The smoke probe ran in the runtime image on a GPU node, at the level it reports."""
    if not facts.smoke:
        return _skip("smoke", "smoke probe", "the smoke probe did not run")
    return [Check("smoke", "pass" if s.ok else "fail", f"{s.image} on {s.node}",
                  f"smoke probe at level {s.level} {'passed' if s.ok else 'failed'}"
                  f"{': ' + s.detail if s.detail else ''}",
                  "" if s.ok else "see the cuda-driver and engine-compute-capability checks for this node",
                  _sources(facts, [s])) for s in facts.smoke]


# ---- upgrades: a target stack against what runs now ----------------------------------------------------------

@upgrade_rule("upgrade-operator-path")
def upgrade_operator_path(current: Facts, target: Facts, m: Matrix) -> list[Check]:
    """Within a major release or to the next one; never a downgrade."""
    now, then = current.operator_version, target.operator
    if now is None or then is None:
        return _skip("upgrade-operator-path", "gpu-operator", "no current or target GPU Operator release is known")
    subject = f"gpu-operator {now.version} -> {then.version}"
    a, b = version_key(now.version), version_key(then.version)
    sources = _sources(current, [now]) + _sources(target, [then])
    if b < a:
        return [Check("upgrade-operator-path", "fail", subject, f"{then.version} is older than {now.version}: "
                      "downgrades are not supported", "pick a target release at or after the running one", sources)]
    ok = b[0] - a[0] <= 1
    text = f"{m.operator_upgrade_rule} {now.version} -> {then.version}"
    steps = [r.version for r in _installable(m) if version_key(r.version)[0] == a[0] + 1]
    step = (f"upgrade through gpu-operator {steps[-1]} first" if steps else
            f"upgrade through a {a[0] + 1}.x release first; {_none_installable(f'is {a[0] + 1}.x', m)}")
    return [Check("upgrade-operator-path", "pass" if ok else "fail", subject, text, "" if ok else step,
                  (*sources, f"matrix: gpu_operator upgrade_rule: {m.operator_upgrade_rule_source}"))]


@upgrade_rule("upgrade-driver")
def upgrade_driver(current: Facts, target: Facts, m: Matrix) -> list[Check]:
    """A driver change restarts the driver on every GPU node; a branch change is a major upgrade."""
    planned = target.driver.version if target.driver else None
    groups = _driver_groups(current)
    if planned is None or not groups:
        return _skip("upgrade-driver", "driver", "no current or target driver version is known")
    checks = []
    for driver, nodes in groups.items():
        subject = f"driver {driver} -> {planned} on {_node_list(nodes)}"
        sources = _sources(current, nodes) + _sources(target, [target.driver] if target.driver else [])
        if driver == planned:
            checks.append(Check("upgrade-driver", "pass", subject, f"the driver stays at {driver}", "", sources))
        elif branch_of(driver) != branch_of(planned):
            checks.append(Check("upgrade-driver", "warn", subject,
                                f"driver branch change {branch_of(driver)} -> {branch_of(planned)}: every GPU node is "
                                "drained and its driver reloaded",
                                "plan a maintenance window; cordon and drain GPU nodes one at a time "
                                "(driver.upgradePolicy maxUnavailable)", sources))
        else:
            checks.append(Check("upgrade-driver", "warn", subject,
                                f"driver update within {branch_of(driver)}: GPU pods are evicted node by node while "
                                "the driver reloads", "let the operator's upgrade controller roll the nodes", sources))
    return checks


@upgrade_rule("upgrade-runtime-cuda")
def upgrade_runtime_cuda(current: Facts, target: Facts, m: Matrix) -> list[Check]:
    """New runtime images against the drivers that run now: images roll before nodes get a new driver."""
    running = {i.image for i in current.runtime_images}
    changed = [i for i in target.runtime_images if i.image not in running]
    if not changed:
        return [Check("upgrade-runtime-cuda", "pass", "runtime images", "no runtime image changes")]
    return _cuda_checks("upgrade-runtime-cuda", current, changed, m)


@upgrade_rule("upgrade-vgpu-host-guest")
def upgrade_vgpu_host_guest(current: Facts, target: Facts, m: Matrix) -> list[Check]:
    """The target guest driver against the host managers that run now."""
    return _host_guest_checks("upgrade-vgpu-host-guest", current, target, m)


@upgrade_rule("upgrade-operator-kubernetes")
def upgrade_operator_kubernetes(current: Facts, target: Facts, m: Matrix) -> list[Check]:
    """The target GPU Operator release against the Kubernetes version that runs now."""
    if target.operator is None or current.kubernetes is None:
        return _skip("upgrade-operator-kubernetes", "gpu-operator", "no target operator or current Kubernetes "
                     "version is known")
    facts = current.model_copy(update={"sources": {**target.sources, **current.sources}})
    return [_operator_kubernetes("upgrade-operator-kubernetes", facts, target.operator, current.kubernetes, m)]


@upgrade_rule("upgrade-crd-versions")
def upgrade_crd_versions(current: Facts, target: Facts, m: Matrix) -> list[Check]:
    """Every CRD version stored now must still be served by the target operator release."""
    release = m.operator(target.operator.version) if target.operator else None
    if release is None or release.crds is None or not current.crds:
        return _skip("upgrade-crd-versions", "CRDs", "no current CRD stored versions or no target CRD versions in "
                     "the matrix")
    checks = []
    for crd in current.crds:
        served = release.crds.get(crd.name)
        subject = f"CRD {crd.name}"
        sources = _sources(current, [crd], [release])
        note = _unverified([], _mark(release.crds_unverified, release.crds_source))
        if served is None:
            checks.append(Check("upgrade-crd-versions", "warn", subject,
                                f"gpu-operator {release.version} no longer ships {crd.name}{note}",
                                "delete its objects or keep them managed elsewhere", sources))
            continue
        removed = [v for v in crd.stored_versions if v not in served]
        text = (f"stored versions {', '.join(crd.stored_versions)}; gpu-operator {release.version} serves "
                f"{', '.join(served)}{note}")
        checks.append(Check("upgrade-crd-versions", "fail" if removed else "pass", subject,
                            text + (f": the upgrade removes {', '.join(removed)}" if removed else ""),
                            f"migrate stored objects to {served[-1]} and drop {', '.join(removed)} from "
                            f"status.storedVersions before upgrading" if removed else "", sources))
    return checks
