"""Registry credentials: a docker config file, its credential helpers, auth challenges."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import urllib.parse
from pathlib import Path

from airgap.oci.wire import DOCKER_HUB, BadInput


def docker_config_path(authfile: Path | None = None) -> Path:
    """--authfile, else $REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json, else ~/.docker/config.json."""
    if authfile:
        return authfile
    if os.environ.get("REGISTRY_AUTH_FILE"):
        return Path(os.environ["REGISTRY_AUTH_FILE"])
    return Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"


class AuthFile:
    """The credentials of a docker config file: `auths` entries, and the credential helpers docker and skopeo call
    (`credHelpers` per host, else `credsStore`), each asked only for a host actually contacted."""

    def __init__(self, authfile: Path | None = None):
        self.path = docker_config_path(authfile)
        self._auths: dict[str, tuple[str, str]] = {}
        self._helpers: dict[str, str] = {}
        self._store = ""
        if not self.path.is_file():
            if authfile:
                raise BadInput(f"auth file {self.path} does not exist")
            return
        try:
            config = json.loads(self.path.read_bytes())
        except OSError as exc:
            raise BadInput(f"auth file {self.path}: {exc.strerror}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BadInput(f"auth file {self.path} is not JSON: {exc}") from exc
        if not isinstance(config, dict):
            raise BadInput(f"auth file {self.path} is not a docker config JSON object")
        auths, helpers, store = config.get("auths", {}), config.get("credHelpers", {}), config.get("credsStore", "")
        if not isinstance(auths, dict) or not isinstance(helpers, dict) or not isinstance(store, str):
            raise BadInput(f"auth file {self.path}: auths and credHelpers must be objects, credsStore a string")
        for key, entry in auths.items():
            creds = self._entry(key, entry)
            if creds:
                self._auths[_auth_host(key)] = creds
        self._helpers = {_auth_host(key): str(name) for key, name in helpers.items()}
        for name in [*self._helpers.values(), *([store] if store else [])]:
            if not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name.startswith("."):
                raise BadInput(f"auth file {self.path}: {name[:80]!r} is not a credential helper name")
        self._store = store
        for alias in ("docker.io", "index.docker.io"):
            if alias in self._auths:
                self._auths.setdefault(DOCKER_HUB, self._auths[alias])
            if alias in self._helpers:
                self._helpers.setdefault(DOCKER_HUB, self._helpers[alias])

    def _entry(self, key: str, entry: object) -> tuple[str, str] | None:
        if not isinstance(entry, dict):
            raise BadInput(f"auth file {self.path}: auths.{key} is not an object")
        try:
            if entry.get("auth"):
                user, sep, password = base64.b64decode(str(entry["auth"]), validate=True).decode().partition(":")
                if not sep:
                    raise ValueError("no ':' between user and password")
                return user, password
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadInput(f"auth file {self.path}: auths.{key}.auth is not base64 of user:password ({exc})") from exc
        if entry.get("username"):
            return str(entry["username"]), str(entry.get("password", ""))
        return None

    def lookup(self, host: str) -> tuple[str, str] | None:
        """(user, password) for `host`: its credential helper, else its `auths` entry, else the credsStore."""
        helper = self._helpers.get(host) or ("" if host in self._auths else self._store)
        return self._ask_helper(helper, host) if helper else self._auths.get(host)

    def source(self, host: str) -> str:
        """Where `host`'s credentials come from, for messages (never the credentials themselves)."""
        helper = self._helpers.get(host) or ("" if host in self._auths else self._store)
        return f"docker-credential-{helper} (named in {self.path})" if helper else str(self.path)

    def _ask_helper(self, name: str, host: str) -> tuple[str, str] | None:
        program = f"docker-credential-{name}"
        try:
            done = subprocess.run([program, "get"], input=host.encode(), capture_output=True, timeout=60)
        except FileNotFoundError as exc:
            raise BadInput(f"auth file {self.path} names the credential helper {program} for {host}, which is not "
                           "on PATH") from exc
        except subprocess.TimeoutExpired as exc:
            raise BadInput(f"credential helper {program} (named in {self.path}) did not answer for {host}") from exc
        if done.returncode:
            if b"credentials not found" in done.stdout + done.stderr:
                return None
            raise BadInput(f"credential helper {program} (named in {self.path}) failed for {host} "
                           f"(exit {done.returncode})")
        try:
            reply = json.loads(done.stdout)
            return str(reply["Username"]), str(reply["Secret"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise BadInput(f"credential helper {program} (named in {self.path}) answered for {host} without "
                           "Username and Secret") from exc


def _auth_host(key: str) -> str:
    return urllib.parse.urlparse(key).netloc if "://" in key else key.split("/")[0]


def _challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.partition(" ")
    return scheme.lower(), dict(re.findall(r'(\w+)="([^"]*)"', rest))
