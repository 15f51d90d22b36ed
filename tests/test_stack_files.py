"""Stack files as a new user writes them, mistakes included: each mistake is one exact line naming the file (and
the line or key), exit 2, for `paictl plan`, `validate` and `airgap bom` alike, fast on hostile input."""

from __future__ import annotations

from pathlib import Path

import pytest

from paictl.cli import main

GOOD = ("config:\n  pai:cluster:\n    target: generic\n    kubernetesVersion: '1.33'\n"
        "  pai:tenants:\n    - name: team-a\n")
# The classic "billion laughs" in about 560 bytes: ten levels of nine aliases (9^9 strings when expanded).
BOMB = "config:\n  pai:cluster: {target: generic, kubernetesVersion: '1.33'}\n  pai:x:\n" + "".join(
    f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" if i else "    l0: &l0 [lol]\n" for i in range(10))

CASES: list[tuple[str, str | bytes, str]] = [
    ("misspelled namespace", GOOD + "  pia:mlflow: {}\n",
     "pia:mlflow: unknown namespace 'pia'; the platform's keys are pai:<key> (pai:mlflow?), provider settings "
     "kubernetes:, harbor:, pulumi:"),
    ("duplicate key", GOOD + "  pai:harborAdminPassword:\n    secure: AAA\n  pai:harborAdminPassword: hunter2\n",
     "line 9: duplicate key 'pai:harborAdminPassword' (first at line 7)"),
    ("duplicate nested key", GOOD.replace("target: generic", "target: generic\n    target: vks"),
     "line 4: duplicate key 'target' (first at line 3)"),
    ("alias bomb", BOMB, "line 5: YAML aliases (*l0) are not allowed in a stack file; write the value out"),
    ("non-string key", GOOD + "  1.33: x\n", "line 7: the key '1.33' is not a string; quote it"),
    ("boolean key", GOOD.replace("    - name: team-a", "    - yes: team-a"),
     "line 6: the key 'yes' is not a string; quote it"),
    ("unquoted date", GOOD + "  pai:gallery: {retentionSchedule: 2026-01-01}\n",
     "line 7: 2026-01-01 is a date; quote the value"),
    ("binary", GOOD + "  pai:kubeconfig: !!binary aGVsbG8=\n", "line 7: !!binary values are not allowed"),
    ("python tag", GOOD + "  pai:x: !!python/object:os.system x\n",
     "line 7: the tag python/object:os.system is not allowed"),
    ("not UTF-8", GOOD.encode() + b"  pai:x: caf\xe9\n",
     f"not UTF-8 text (byte 0xe9 at offset {len(GOOD) + len('  pai:x: caf')})"),
    ("deep nesting", GOOD + "  pai:x: " + "[" * 40 + "]" * 40 + "\n", "line 7: nested deeper than 32 levels"),
    ("not YAML", GOOD + "  pai:x: [\n", "line 8: not valid YAML: expected the node content, but found '<stream end>'"),
    ("not a mapping", "- a\n- b\n", "expected a mapping with a `config:` mapping of keys to values"),
    ("unquoted Kubernetes version", GOOD.replace("'1.33'", "1.30"),
     "pai:cluster.kubernetesVersion: 1.3 is a number in YAML, not a string: quote it in the stack file (unquoted, "
     "YAML reads 1.30 as the number 1.3)"),
    ("huge value cut", GOOD.replace("target: generic", "target: " + "x" * 100_000),
     "pai:cluster.target: '" + "x" * 59 + "... (100002 characters) is not one of vks, generic"),
]


@pytest.mark.parametrize("command", [["plan"], ["validate"], ["airgap", "bom"]])
@pytest.mark.parametrize(("text", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_stack_file_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               command: list[str], text: str | bytes, message: str) -> None:
    path = tmp_path / "Pulumi.bad.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    assert main([*command, "--config-file", str(path)]) == 2
    out = capsys.readouterr()
    assert out.err == f"error: {path}: {message}\n"
    assert out.out == ""


def test_the_good_file_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "Pulumi.good.yaml"
    path.write_text(GOOD)
    assert main(["validate", "--config-file", str(path)]) == 0

