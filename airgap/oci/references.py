"""Image references: REGISTRY/PATH[:TAG][@DIGEST], checked before use."""

from __future__ import annotations

import re
from dataclasses import dataclass

_HOST = r"[A-Za-z0-9.-]+(?::[0-9]+)?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
REPO_PATH = re.compile(_PATH)  # a repository path: never "..", never absolute
_REF = re.compile(rf"^(?P<host>{_HOST})/(?P<path>{_PATH})"
                  r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")
_DESTINATION = re.compile(rf"{_HOST}(?:/{_PATH})?")  # REGISTRY[/prefix]


@dataclass(frozen=True)
class Reference:
    """host/path[:tag][@sha256:...]; the path is everything after the host, as the mirror lays it out."""

    host: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        text = text.strip().removeprefix("oci://").removeprefix("docker://")
        match = _REF.match(text)
        if not match or ("." not in match["host"] and ":" not in match["host"] and match["host"] != "localhost"):
            raise ValueError(f"{text!r} is not an image reference host/path:tag[@sha256:<hex>] with a registry host")
        if not match["tag"] and not match["digest"]:
            raise ValueError(f"{text!r} names neither a tag nor a digest")
        return cls(match["host"], match["path"], match["tag"], match["digest"])

    @property
    def ref(self) -> str:
        """What to ask the registry for: the pinned digest if any, else the tag."""
        return self.digest or str(self.tag)

    def __str__(self) -> str:
        return f"{self.host}/{self.path}" + (f":{self.tag}" if self.tag else "") + (
            f"@{self.digest}" if self.digest else "")
