"""Optional Ed25519 signing: a key pair, `bmsdk.sig` (a signature of bmsdk.json's exact bytes), and its check.

bmsdk.json pins every other file by sha256, so a valid signature of it followed by the checksum check covers the
whole folder. `cryptography` is imported inside the functions only (`pip install 'bmsdk[sign]'`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
from pathlib import Path

from bmsdk.errors import BackendUnavailableError, SignatureError, SigningKeyError
from bmsdk.manifest import MANIFEST_NAME, SIGNATURE_NAME

ALGORITHM = "ed25519"
SIGNATURE_BYTES = 64
RESIGN = "re-sign a known-good copy with `bmsdk sign ARTIFACT --key KEY.pem`"


# --- keys --------------------------------------------------------------------------------


def generate_keypair(name: str | Path) -> tuple[Path, Path]:
    """Write a new key pair: NAME.pem (private, PKCS8, mode 0600) and NAME.pub.pem (public). Never overwrites."""
    _require_cryptography()
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    base = Path(str(name).removesuffix(".pem"))
    private_path, public_path = base.with_name(base.name + ".pem"), base.with_name(base.name + ".pub.pem")
    for path in (private_path, public_path):
        if path.exists():
            raise SigningKeyError(f"{path} already exists", "choose another name: bmsdk never overwrites a key")
    if not base.parent.is_dir():
        raise SigningKeyError(f"folder {base.parent} does not exist", "create it, or pass another -o NAME")
    key = Ed25519PrivateKey.generate()
    _write_new(private_path, key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()), 0o600)
    _write_new(public_path, key.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo), 0o644)
    return private_path, public_path


def load_private_key(path: str | Path):
    """The Ed25519 private key in the PEM file at `path`."""
    _require_cryptography()
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    data = _read_key_file(path, "private key")
    if b"PUBLIC KEY-----" in data:
        raise SigningKeyError(
            f"{path} is a public key", "sign with the private key NAME.pem (from `bmsdk keygen -o NAME`)"
        )
    try:
        key = load_pem_private_key(data, password=None)
    except TypeError:  # cryptography's way of saying the key is encrypted
        raise SigningKeyError(
            f"{path} is encrypted with a password",
            "bmsdk reads unencrypted PKCS8 keys: "
            "`openssl pkey -in KEY -out PLAIN.pem`, and keep PLAIN.pem at mode 0600",
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise SigningKeyError(f"{path} is not a PEM private key", "pass NAME.pem from `bmsdk keygen -o NAME`") from None
    _require_ed25519(key, Ed25519PrivateKey, str(path))
    return key


def load_public_key(source: str | Path | bytes, origin: str | None = None):
    """The Ed25519 public key in `source`: a PEM file's path, or PEM bytes (or text). `origin` names it in errors."""
    _require_cryptography()
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    if isinstance(source, str) and source.lstrip().startswith("-----BEGIN"):
        source = source.encode()
    data = source if isinstance(source, bytes) else _read_key_file(source, "public key", origin)
    where = "the public key given" if isinstance(source, bytes) else str(source)
    where += f" (from {origin})" if origin else ""
    if b"PRIVATE KEY-----" in data:
        raise SigningKeyError(
            f"{where} is a private key",
            "verify with the public key NAME.pub.pem; keep the private key off the machines that load artifacts",
        )
    try:
        key = load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise SigningKeyError(
            f"{where} is not a PEM public key", "pass NAME.pub.pem from `bmsdk keygen -o NAME`"
        ) from None
    _require_ed25519(key, Ed25519PublicKey, where)
    return key


def fingerprint(public_key) -> str:
    """sha256 (hex) of the raw 32-byte public key: names a key in bmsdk.sig and in errors."""
    from cryptography.hazmat.primitives import serialization as s

    return hashlib.sha256(public_key.public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)).hexdigest()


def check_signature(
    folder: Path, manifest_data: bytes, public_key: str | Path | bytes, origin: str | None = None
) -> None:
    """Raise SignatureError unless `folder`/bmsdk.sig is `public_key`'s signature of `manifest_data`."""
    _require_cryptography()
    from cryptography.exceptions import InvalidSignature

    key = load_public_key(public_key, origin)
    signer, signature = _read_signature(folder, origin)
    expected = fingerprint(key)
    if signer != expected:
        raise SignatureError(
            f"{folder} was signed by key sha256:{signer[:16]}, not by the public key given (sha256:{expected[:16]})",
            "verify with the signer's public key, or " + RESIGN,
        )
    try:
        key.verify(signature, manifest_data)
    except InvalidSignature:
        raise SignatureError(
            f"{folder / MANIFEST_NAME} does not match its signature in {SIGNATURE_NAME} (changed after signing)",
            "do not use this artifact; get an intact copy from its signer, or " + RESIGN,
        ) from None


def _read_signature(folder: Path, origin: str | None) -> tuple[str, bytes]:
    """(signer's key fingerprint, signature) from bmsdk.sig; SignatureError if it is absent or malformed."""
    path = folder / SIGNATURE_NAME
    if not path.exists():
        required = f"by {origin}" if origin else "(a public key was given)"
        raise SignatureError(
            f"{folder} is not signed (no {SIGNATURE_NAME}), but a signature is required {required}",
            "sign it with `bmsdk sign ARTIFACT --key KEY.pem`, or get a signed copy from its builder",
        )
    try:
        record = json.loads(path.read_bytes().decode("utf-8"))
        problem = _signature_problem(record)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        problem = f"not a readable JSON file ({type(e).__name__})"
    if problem:
        raise SignatureError(f"{path} is malformed: {problem}", RESIGN)
    return record["public_key_sha256"], base64.b64decode(record["signature"], validate=True)


def _signature_problem(record) -> str | None:
    """What is wrong with a parsed bmsdk.sig, or None."""
    if not isinstance(record, dict):
        return "not a JSON object"
    for field in ("algorithm", "public_key_sha256", "signature"):
        if not isinstance(record.get(field), str):
            return f"no string field '{field}'"
    if record["algorithm"] != ALGORITHM:
        return f"algorithm '{record['algorithm']}' is not {ALGORITHM}"
    try:
        if len(base64.b64decode(record["signature"], validate=True)) != SIGNATURE_BYTES:
            return f"the signature is not {SIGNATURE_BYTES} bytes"
    except binascii.Error:
        return "the signature is not base64"
    return None


# --- helpers -----------------------------------------------------------------------------


def _require_cryptography() -> None:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        raise BackendUnavailableError(
            "signing and verifying artifacts needs the 'cryptography' package, which is not installed",
            "pip install 'bmsdk[sign]'",
        ) from None


def _read_key_file(path: str | Path, kind: str, origin: str | None = None) -> bytes:
    where = f"{path} (from {origin})" if origin else str(path)
    if not Path(path).is_file():
        fix = (
            f"point {origin.lstrip('$')} at an existing PEM {kind} file, or unset it"
            if origin
            else f"pass an existing PEM {kind} file"
        )
        raise SigningKeyError(f"{kind} file {where} does not exist", fix)
    return Path(path).read_bytes()


def _require_ed25519(key, expected: type, where: str) -> None:
    if not isinstance(key, expected):
        kind = type(key).__name__.lstrip("_").removesuffix("PrivateKey").removesuffix("PublicKey")
        raise SigningKeyError(
            f"{where} is not an Ed25519 key (it is {kind})",
            "bmsdk signs with Ed25519: make a key pair with `bmsdk keygen -o NAME`",
        )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` with `mode` from the start (a private key is never readable by others, even briefly)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        raise SigningKeyError(f"{path} already exists", "choose another name: bmsdk never overwrites a key") from None
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def replace_atomically(path: Path, data: bytes) -> None:
    """Write a temporary sibling and rename it over `path`: a reader sees the old file or the new, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
