"""GPU products: the names the config selects nodes by."""

from __future__ import annotations

from validation.facts import Facts, Record
from validation.matrix import Matrix
from validation.rules.helpers import _mark, _skip, _sources, _unverified
from validation.rules.registry import Check, rule


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
