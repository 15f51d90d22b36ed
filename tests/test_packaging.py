"""The wheel is the whole program: built from the tracked files, installed into a fresh environment outside the
checkout (dependencies from the test environment, no network), `paictl validate` and `paictl plan` run there."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from conftest import REPO


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, check=False)


def test_the_installed_wheel_validates_and_plans_a_stack_file(tmp_path: Path) -> None:
    source = tmp_path / "source"
    tracked = run("git", "ls-files", "-z", cwd=REPO).stdout.split("\0")
    for name in filter(None, tracked):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                "--wheel-dir", tmp_path / "dist", source, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("private_ai_platform-*.whl")

    env = tmp_path / "env"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp_path)
                .stdout.strip())
    # The test environment's dependencies, after the env's own site-packages (so the wheel's packages win).
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    installed = run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel,
                    cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr

    where = run(python, "-c", "import components, validation.sources.config as s, program; "
                "print(components.__file__, s.__file__, program.__file__)", cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert all(Path(f).is_relative_to(site) for f in where.stdout.split()), where.stdout

    stack = tmp_path / "Pulumi.site.yaml"
    shutil.copy2(REPO / "stacks" / "Pulumi.vks-prod.yaml", stack)
    validated = run(env / "bin" / "paictl", "validate", "--config-file", stack, "--format", "json", cwd=tmp_path)
    assert validated.returncode == 0, validated.stderr
    assert json.loads(validated.stdout)["verdict"] in ("pass", "warn")
    planned = run(env / "bin" / "paictl", "plan", "--config-file", stack, "--format", "json", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert any(p["name"] == "platform-gpu-operator" for p in json.loads(planned.stdout)["parts"])
