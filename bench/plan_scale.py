"""Plan the `dev` stack with 10, 100 and 1000 synthetic model endpoints under Pulumi's mocks, and compare the
cost per registered resource with the floor: registering as many bare resources with the same mocks.

Run: .venv/bin/python bench/plan_scale.py [--sizes 10 100 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import pulumi

from program.deploy import deploy
from program.offline import StackConfig, load_stack_file, run_offline, stack_path

MODELS_PER_TENANT = 10


def synthetic(models: int) -> StackConfig:
    """`dev` with `models` CPU endpoints spread over one tenant per ten models."""
    config = load_stack_file(stack_path("dev"), "dev")
    tenants = [{"name": f"tenant-{t}"} for t in range(max(1, models // MODELS_PER_TENANT))]
    endpoints: list[dict[str, Any]] = [{
        "name": f"model-{i}", "routingName": f"bench/model-{i}", "type": "completion", "format": "gguf",
        "source": f"oci://harbor.bench.internal/models/model-{i}:v1", "tenant": tenants[i % len(tenants)]["name"],
    } for i in range(models)]
    config.values["pai:tenants"] = json.dumps(tenants)
    config.values["pai:models"] = json.dumps(endpoints)
    return config


def bare(count: int) -> Callable[[], None]:
    def program() -> None:
        for i in range(count):
            pulumi.CustomResource("pai:bench:Bare", f"bare-{i}", {"index": i})

    return program


def count(program: Callable[[], Any], config: StackConfig) -> int:
    return len(run_offline(program, config))


def best_of(repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    """Fastest wall time of `repeat` runs, and the number of resources registered."""
    times, count = [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        count = run()
        times.append(time.perf_counter() - start)
    return min(times), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'models':>7} {'resources':>9} {'plan ms':>9} {'ms/res':>7} {'floor ms/res':>12} {'ratio':>6}")
    for size in args.sizes:
        config = synthetic(size)
        plan_s, resources = best_of(args.repeat, partial(count, deploy, config))
        floor_s, _ = best_of(args.repeat, partial(count, bare(resources), config))
        per, floor = plan_s * 1000 / resources, floor_s * 1000 / resources
        print(f"{size:>7} {resources:>9} {plan_s * 1000:>9.1f} {per:>7.3f} {floor:>12.3f} {per / floor:>6.2f}")


if __name__ == "__main__":
    main()
