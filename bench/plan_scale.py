"""Plan the `dev` stack with 10, 100 and 1000 synthetic model endpoints under Pulumi's mocks, and compare the
cost per registered resource with two floors run in the same process with the same mocks and recording monitor:

- bare: as many resources with one small input each (Pulumi's fixed cost per registration);
- replay: the plan's own resources (type, name and inputs as recorded) registered flat, without the program: what
  registering, serializing, echoing and recording those inputs costs, with no config, components, Outputs or
  dependencies. plan / replay is the program's own share; replay / bare the price of the inputs' size.

Times are the process's CPU seconds (every thread: the mock monitor runs in an executor), best of --repeat: on a
loaded machine wall time measures the neighbours as much as the plan.

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
from program.offline import Registered, StackConfig, load_stack_file, run_offline, stack_path

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


def replay(records: list[Registered]) -> Callable[[], None]:
    """Register each recorded resource again, flat: same type, name and inputs."""

    def program() -> None:
        for i, record in enumerate(records):
            kind = pulumi.CustomResource if record.custom else pulumi.ComponentResource
            kind(record.type, f"{record.name}-{i}", dict(record.inputs))

    return program


def count(program: Callable[[], Any], config: StackConfig) -> int:
    return len(run_offline(program, config))


def best_of(repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    """Least CPU time of `repeat` runs, and the number of resources registered."""
    times, count = [], 0
    for _ in range(repeat):
        start = time.process_time()
        count = run()
        times.append(time.process_time() - start)
    return min(times), count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'models':>7} {'resources':>9} {'plan ms':>9} {'bare ms':>9} {'replay ms':>9} {'plan/bare':>9} "
          f"{'plan/replay':>11} {'replay/bare':>11}")
    for size in args.sizes:
        config = synthetic(size)
        records = run_offline(deploy, config)
        plan_s, resources = best_of(args.repeat, partial(count, deploy, config))
        bare_s, _ = best_of(args.repeat, partial(count, bare(resources), config))
        replay_s, _ = best_of(args.repeat, partial(count, replay(records), config))
        print(f"{size:>7} {resources:>9} {plan_s * 1000:>9.1f} {bare_s * 1000:>9.1f} {replay_s * 1000:>9.1f} "
              f"{plan_s / bare_s:>9.2f} {plan_s / replay_s:>11.2f} {replay_s / bare_s:>11.2f}")


if __name__ == "__main__":
    main()
