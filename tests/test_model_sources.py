"""`mlflow://NAME@ALIAS` model sources under Pulumi's mocks: resolved once, when the config is parsed, through the
resolver hook, to the gallery digest the endpoint then names; anything else is a config error naming the source."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import Program, minimal, of_kind

from components.config import ConfigError, set_model_resolver
from components.model_endpoints import REGISTERED_MODEL_ANNOTATION

DIGEST = "oci://harbor.example.com/prod-models/e5@sha256:" + "ab" * 32
ENDPOINT = {"name": "e5", "routingName": "acme/e5", "type": "embedding", "format": "safetensors",
            "source": "mlflow://e5@champion", "tenant": "team-a"}


@pytest.fixture
def aliases() -> Iterator[dict[tuple[str, str], str]]:
    """A registry of aliases the resolver answers from; the hook is removed afterwards."""
    known: dict[tuple[str, str], str] = {}

    def resolve(name: str, alias: str) -> str:
        if (name, alias) not in known:
            raise LookupError(f"no alias {alias!r} on {name!r}")
        return known[(name, alias)]

    set_model_resolver(resolve)
    yield known
    set_model_resolver(None)


def test_the_endpoint_names_the_digest_its_alias_resolves_to(run_program: Program,
                                                             aliases: dict[tuple[str, str], str]) -> None:
    aliases[("e5", "champion")] = DIGEST
    (service,) = of_kind(run_program(minimal(models=[ENDPOINT])), "InferenceService")
    assert service["spec"]["predictor"]["model"]["storageUri"] == DIGEST
    assert service["metadata"]["annotations"][REGISTERED_MODEL_ANNOTATION] == "mlflow://e5@champion"


@pytest.mark.parametrize(("source", "why"), [
    ("oci://harbor.example.com/prod-models/e5:prod", "its model version's source 'oci://harbor.example.com/"
                                                     "prod-models/e5:prod' is not a gallery reference by digest"),
    ("s3://models/e5", "its model version's source 's3://models/e5' is not a gallery reference by digest"),
    (None, "no alias 'champion' on 'e5'"),
])
def test_an_alias_that_does_not_name_a_gallery_digest_is_a_config_error(
        run_program: Program, aliases: dict[tuple[str, str], str], source: str | None, why: str) -> None:
    if source:
        aliases[("e5", "champion")] = source
    with pytest.raises(ConfigError) as error:
        run_program(minimal(models=[ENDPOINT]))
    assert str(error.value) == f"stacks/Pulumi.test.yaml: pai:models[0].source: mlflow://e5@champion: {why}"


def test_without_a_resolver_the_source_is_refused(run_program: Program) -> None:
    set_model_resolver(None)
    with pytest.raises(ConfigError, match=r"mlflow://e5@champion: no MLflow to resolve it from"):
        run_program(minimal(models=[ENDPOINT]))
