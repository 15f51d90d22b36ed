"""Engines: compute capability, model format."""

from __future__ import annotations

from collections.abc import Sequence

from validation.facts import Facts, Record
from validation.matrix import Matrix, Row, version_key
from validation.rules.helpers import _products, _skip, _sources, _unverified
from validation.rules.registry import Check, rule


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
