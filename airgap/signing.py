"""Bundle signatures: ECDSA P-256 over SHA-256 of the bundle's index (pai-bundle.json), stored base64 DER, the
format `openssl dgst -sha256 -verify` and `cosign verify-blob --key` check. Keys are PEM files; a private key's
passphrase, if it has one, comes from $PAICTL_SIGN_KEY_PASSPHRASE. Nothing here prints or stores a key."""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from airgap.oci import BadInput, OciError

PASSPHRASE_ENV = "PAICTL_SIGN_KEY_PASSPHRASE"


class SignatureError(OciError):
    """A bundle whose signature is missing or does not verify with the key given."""


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{what} {path}: {exc.strerror}") from exc


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """A PEM EC P-256 private key (PKCS#8 or SEC1, as `openssl ecparam -genkey` or `openssl genpkey` write it)."""
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        key = serialization.load_pem_private_key(_read(path, "--sign-key"),
                                                 passphrase.encode() if passphrase else None)
    except (ValueError, TypeError) as exc:
        hint = f" (encrypted? set ${PASSPHRASE_ENV})" if "encrypted" in str(exc).lower() or "password" in str(
            exc).lower() else ""
        raise BadInput(f"--sign-key {path}: not a readable PEM private key{hint}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise BadInput(f"--sign-key {path}: not an EC P-256 (prime256v1) key")
    return key


def load_public_key(path: Path) -> ec.EllipticCurvePublicKey:
    """A PEM EC P-256 public key (SubjectPublicKeyInfo, as `openssl ec -pubout` and `cosign` write it)."""
    try:
        key = serialization.load_pem_public_key(_read(path, "--verify-key"))
    except ValueError as exc:
        raise BadInput(f"--verify-key {path}: not a PEM public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise BadInput(f"--verify-key {path}: not an EC P-256 (prime256v1) public key")
    return key


def sign(data: bytes, key: ec.EllipticCurvePrivateKey) -> bytes:
    """The base64 of the DER ECDSA signature of SHA-256(`data`)."""
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))) + b"\n"


def verify(data: bytes, signature: bytes, key: ec.EllipticCurvePublicKey, where: str) -> None:
    """Raises SignatureError naming `where` unless `signature` (base64 DER) signs `data` with `key`."""
    try:
        key.verify(base64.b64decode(signature.strip(), validate=True), data, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise SignatureError(f"{where}: the signature does not verify with the key given: the bundle index was "
                             "changed after signing, or another key signed it") from exc
