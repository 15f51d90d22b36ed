"""A bounded mutation run (cosmic-ray) over the modules issue 12 names, each against only its own test files.

Not part of the test command (minutes of CPU per module). Run it with a Python that has cosmic-ray installed
(`python3 -m venv /tmp/cr && /tmp/cr/bin/pip install cosmic-ray`), from the repository root:

    /tmp/cr/bin/python scripts/mutation.py [--sample N] [--seed S] [--only config,rules] [--work DIR]
    /tmp/cr/bin/python scripts/mutation.py --survivors EARLIER.log    # only the mutants that survived then

It copies the committed tree (git archive HEAD) to DIR, so the working tree is never mutated; runs the tests with
this checkout's .venv; mutates a fixed random sample of N mutants per module (the same sample for the same seed, so
a later run compares like with like); and prints, per module, the mutants run, killed and survived, with each
survivor's place, operator and occurrence. `--survivors` reruns exactly the survivors an earlier run printed (by
operator and occurrence, which stay put while only tests change), to see which the tests added since now kill.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTEST = f"{REPO / '.venv/bin/python'} -m pytest -x -q -p no:cacheprovider"
# module -> (file, the test files that guard it, seconds a mutant may take)
MODULES = {
    "config": ("components/config.py", "tests/test_config_errors.py tests/test_stack_files.py "
               "tests/test_cluster_target.py", 120),
    "tenancy": ("components/tenancy.py", "tests/test_tenancy.py", 120),
    "rules": ("validation/rules.py", "tests/test_validation_rules.py", 120),
    "bundle": ("airgap/bundle.py", "tests/test_airgap_delta.py tests/test_airgap_mirror.py -k "
               "'bundle or import or export or flipped or delta or since'", 300),
}


def run(module: str, work: Path, sample: int, seed: int, only: set[tuple[str, int]] | None = None
        ) -> tuple[int, list[str]]:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    path, tests, timeout = MODULES[module]
    config = work / f"{module}.toml"
    config.write_text(f'[cosmic-ray]\nmodule-path = "{path}"\ntimeout = {timeout}.0\nexcluded-modules = []\n'
                      f'test-command = "{PYTEST} {tests}"\n\n[cosmic-ray.distributor]\nname = "local"\n')
    session = work / f"{module}.sqlite"
    session.unlink(missing_ok=True)
    subprocess.run(["cosmic-ray", "init", str(config), str(session)], cwd=work, check=True)
    with use_db(str(session), WorkDB.Mode.open) as db:
        items = sorted(db.pending_work_items, key=lambda w: (w.mutations[0].operator_name, w.mutations[0].occurrence))
        if only is not None:
            keep = {w.job_id for w in items if (w.mutations[0].operator_name, w.mutations[0].occurrence) in only}
        else:
            keep = {w.job_id for w in random.Random(f"{seed}-{module}").sample(items, min(sample, len(items)))}
        skipped = [w.job_id for w in items if w.job_id not in keep]
        db.set_multiple_results(skipped, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
        print(f"{module}: {len(items)} mutants, running {len(keep)}", flush=True)
    subprocess.run(["cosmic-ray", "exec", str(config), str(session)], cwd=work, check=True)
    survivors = []
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            if item.job_id in keep and result.test_outcome == "survived":
                spec = item.mutations[0]
                survivors.append(f"{spec.module_path}:{spec.start_pos[0]} {spec.operator_name} #{spec.occurrence}")
    return len(keep), sorted(survivors)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=30)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--only", default=",".join(MODULES))
    parser.add_argument("--work", type=Path, default=Path("/tmp/pai-mutation"))
    parser.add_argument("--survivors", type=Path, help="the output of an earlier run: rerun its survivors only")
    args = parser.parse_args()
    earlier: dict[str, set[tuple[str, int]]] = {}
    if args.survivors:
        for found in re.finditer(r"survived: (\S+?):\d+ (\S+) #(\d+)", args.survivors.read_text()):
            module = next(m for m, (path, _, _) in MODULES.items() if path == found[1])
            earlier.setdefault(module, set()).add((found[2], int(found[3])))
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(args.work)], input=archive, check=True)
    total_run = total_survived = 0
    for module in (list(earlier) if args.survivors else args.only.split(",")):
        ran, survivors = run(module, args.work, args.sample, args.seed, earlier.get(module))
        total_run, total_survived = total_run + ran, total_survived + len(survivors)
        print(f"{module}: {ran} run, {ran - len(survivors)} killed, {len(survivors)} survived "
              f"({100 * len(survivors) / max(ran, 1):.0f}%)")
        for line in survivors:
            print(f"  survived: {line}")
    print(f"all: {total_run} run, {total_survived} survived ({100 * total_survived / max(total_run, 1):.0f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
