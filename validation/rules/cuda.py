"""CUDA of each runtime image vs the node driver."""

from __future__ import annotations

from validation.facts import Facts, NodeFacts, RuntimeImageFacts
from validation.matrix import Matrix, Row, branch_of
from validation.rules.helpers import _driver_groups, _ge, _mark, _node_list, _products, _skip, _sources, _unverified
from validation.rules.registry import Check, Status, rule


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
