"""The validation report: verdict and checks as a table, JSON (DESIGN section 6) or JUnit XML."""

from __future__ import annotations

import json
from collections import Counter
from typing import Literal
from xml.etree import ElementTree as ET

from validation.rules import NOT_APPLICABLE, UNVERIFIED_SOURCE, Check

Verdict = Literal["pass", "warn", "fail"]


def verdict(checks: list[Check]) -> Verdict:
    """fail if any check fails, else warn if any warns, else pass (skips do not count)."""
    statuses = {c.status for c in checks}
    return "fail" if "fail" in statuses else "warn" if "warn" in statuses else "pass"


MATRIX = "matrix: "


def matrix_rows(check: Check) -> list[dict[str, str]]:
    """The matrix rows a check used, each with its source ("matrix: <table> <key>: <source>" in its sources)."""
    rows = []
    for source in check.sources:
        if source.startswith(MATRIX):
            row, _, where = source.removeprefix(MATRIX).partition(": ")
            rows.append({"row": row, "source": where})
    return rows


def to_json(checks: list[Check]) -> str:
    """DESIGN section 6, each check with `rows`: the matrix rows it used and where each row's facts are from."""
    document = {
        "verdict": verdict(checks),
        "checks": [{"id": c.id, "status": c.status, "subject": c.subject, "message": c.message, "fix": c.fix,
                    "sources": list(c.sources), "rows": matrix_rows(c)} for c in checks],
    }
    return json.dumps(document, indent=2) + "\n"


def to_table(checks: list[Check]) -> str:
    """One block per check; a skip that cannot apply shows as N/A. Matrix rows and research notes stay out (JSON
    has them)."""
    counts = Counter(c.status for c in checks)
    lines = [f"verdict: {verdict(checks)} ({', '.join(f'{counts[s]} {s}' for s in ('pass', 'warn', 'fail', 'skip'))})"]
    width = max((len(c.id) for c in checks), default=0)
    for c in checks:
        label = "N/A" if c.status == "skip" and c.message.startswith(NOT_APPLICABLE) else c.status.upper()
        lines.append(f"{label:<4}  {c.id:<{width}}  {c.subject}")
        lines.append(f"      {c.message}")
        if c.fix:
            lines.append(f"      fix: {c.fix}")
    sources = sorted({s for c in checks for s in c.sources if not s.startswith((MATRIX, UNVERIFIED_SOURCE))})
    if sources:
        lines.append("facts from: " + "; ".join(sources))
    return "\n".join(lines) + "\n"


def to_junit(checks: list[Check]) -> str:
    """One <testsuite> per check id, one <testcase> per subject: fail -> <failure>, skip -> <skipped>; a warn
    passes and carries its message in <system-out>."""
    root = ET.Element("testsuites", name="paictl validate", tests=str(len(checks)),
                      failures=str(sum(c.status == "fail" for c in checks)), errors="0",
                      skipped=str(sum(c.status == "skip" for c in checks)))
    for check_id in dict.fromkeys(c.id for c in checks):
        group = [c for c in checks if c.id == check_id]
        suite = ET.SubElement(root, "testsuite", name=check_id, tests=str(len(group)),
                              failures=str(sum(c.status == "fail" for c in group)), errors="0",
                              skipped=str(sum(c.status == "skip" for c in group)))
        for c in group:
            case = ET.SubElement(suite, "testcase", classname=c.id, name=c.subject)
            if c.status == "fail":
                ET.SubElement(case, "failure", message=c.message, type="fail").text = (
                    f"{c.message}\nfix: {c.fix}" if c.fix else c.message)
            elif c.status == "skip":
                ET.SubElement(case, "skipped", message=c.message)
            out = [f"{c.status}: {c.message}"] + ([f"fix: {c.fix}"] if c.fix else [])
            out += [f"source: {s}" for s in c.sources]
            ET.SubElement(case, "system-out").text = "\n".join(out)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


FORMATS = {"table": to_table, "json": to_json, "junit": to_junit}
