"""`helm-release`: an installed release (read by helm) against the one the stack plans."""

from __future__ import annotations

from typing import Any

from validation.facts import ReleaseFacts
from validation.releases import release_checks


def release(version: str, status: str = "deployed", chart: str = "harbor", origin: str = "cluster",
            name: str = "harbor", **values: Any) -> ReleaseFacts:
    return ReleaseFacts(origin=origin, name=name, namespace="harbor", chart=chart, version=version,  # type: ignore[arg-type]
                        status=status, values=values)


def planned(version: str, **values: Any) -> ReleaseFacts:
    return release(version, "planned", origin="config", **values)


def test_an_upgrade_names_the_value_paths_it_changes_never_the_values() -> None:
    (check,) = release_checks([release("1.19.0", core={"replicas": 1}, token="s3cret")],
                              [planned("1.19.1", core={"replicas": 2}, token="[secret]")])
    assert (check.status, check.subject) == ("pass", "release harbor/harbor")
    assert check.message == "an upgrade of harbor 1.19.0 to 1.19.1; values change at core.replicas"
    assert "s3cret" not in check.message


def test_a_downgrade_another_chart_and_an_operation_in_progress_fail() -> None:
    def status(installed: ReleaseFacts) -> str:
        return release_checks([installed], [planned("1.19.1")])[0].status

    assert status(release("1.20.0")) == "fail"
    assert status(release("1.19.1", chart="other")) == "fail"
    assert status(release("1.19.1", status="pending-install")) == "fail"
    assert status(release("1.19.1", status="failed")) == "warn"
    assert status(release("1.19.1")) == "pass"


def test_not_installed_is_a_new_install_and_a_stray_release_of_a_planned_chart_warns() -> None:
    checks = release_checks([release("1.18.0", name="harbor-old")], [planned("1.19.1")])
    assert [(c.subject, c.status) for c in checks] == [("release harbor/harbor", "pass"),
                                                      ("release harbor/harbor-old", "warn")]
    assert checks[0].message.startswith("not installed: a new install of harbor 1.19.1")
