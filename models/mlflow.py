"""MLflow's model registry over its REST API: a model version whose source is a gallery reference by digest, an
alias on it, and the look-up of an alias at plan time (`mlflow://NAME@ALIAS`).

The server and credentials come from MLflow's own environment variables (MLFLOW_TRACKING_URI,
MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN), so no secret is ever on a
command line; errors name the server and the model, never a credential.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from components.config import OCI_DIGEST_SOURCE

URI_ENV = "MLFLOW_TRACKING_URI"
GALLERY_TAG = "pai.gallery.reference"  # on each model version: the gallery reference it was registered from


class MlflowError(Exception):
    """MLflow refused or could not be reached; the message names the server and what was asked."""


@dataclass(frozen=True)
class Mlflow:
    uri: str
    headers: dict[str, str]

    @classmethod
    def from_env(cls, uri: str | None = None) -> Mlflow:
        uri = uri or os.environ.get(URI_ENV)
        if not uri or not uri.startswith(("http://", "https://")):
            raise ValueError(f"the MLflow tracking URI {uri!r} is not an http(s) URL (--mlflow-uri or {URI_ENV})")
        headers = {}
        user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
        if user and password:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        elif os.environ.get("MLFLOW_TRACKING_TOKEN"):
            headers["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
        return cls(uri.rstrip("/"), headers)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             query: dict[str, str] | None = None) -> dict[str, Any]:
        url = f"{self.uri}/api/2.0/mlflow/{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={**self.headers, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                parsed: dict[str, Any] = json.loads(response.read() or b"{}")
                return parsed
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            try:
                detail = json.loads(text)
                text = f"{detail.get('error_code', exc.code)}: {detail.get('message', '')}"
            except (json.JSONDecodeError, AttributeError):
                text = f"HTTP {exc.code} {text[:200]}"
            raise MlflowError(f"MLflow {self.uri}: {path}: {text}") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise MlflowError(f"MLflow {self.uri}: {path}: {exc}") from None

    def register(self, name: str, source: str, alias: str | None = None) -> str:
        """A new version of the registered model `name` (created if new) whose source is `source`, with the
        alias set on it; returns the version."""
        if not OCI_DIGEST_SOURCE.match(source):
            raise MlflowError(f"{source}: a model version's source must be a gallery reference by digest")
        try:
            self.call("POST", "registered-models/create", {"name": name})
        except MlflowError as exc:
            if "RESOURCE_ALREADY_EXISTS" not in str(exc):
                raise
        created = self.call("POST", "model-versions/create", {
            "name": name, "source": source, "tags": [{"key": GALLERY_TAG, "value": source}],
            "description": f"gallery artifact {source}"})
        version = str(created["model_version"]["version"])
        if alias:
            self.call("POST", "registered-models/alias", {"name": name, "alias": alias, "version": version})
        return version

    def resolve(self, name: str, alias: str) -> str:
        """The source of the version `alias` names; LookupError when there is none."""
        try:
            found = self.call("GET", "registered-models/alias", query={"name": name, "alias": alias})
        except MlflowError as exc:
            raise LookupError(str(exc)) from None
        return str(found["model_version"]["source"])


def resolve_from_env(name: str, alias: str) -> str:
    """The config's `mlflow://` resolver (components.config.set_model_resolver): the MLflow of the environment."""
    if not os.environ.get(URI_ENV):
        raise LookupError(f"set {URI_ENV} (and MLFLOW_TRACKING_USERNAME/PASSWORD) to the MLflow that registers it")
    try:
        return Mlflow.from_env().resolve(name, alias)
    except (MlflowError, ValueError) as exc:
        raise LookupError(str(exc)) from None
