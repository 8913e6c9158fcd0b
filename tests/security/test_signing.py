"""Optional Ed25519 signing: real keys, real artifacts; a tampered, unsigned or foreign-signed artifact is refused."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys

import numpy as np
import pytest
from conftest import digit_images

import bmsdk
from bmsdk.artifact import PUBLIC_KEY_ENV, file_checksums, open_artifact, sign_artifact, verify_artifact
from bmsdk.cli import main
from bmsdk.errors import BackendUnavailableError, IntegrityError, ManifestError, SignatureError, SigningKeyError
from bmsdk.manifest import MANIFEST_NAME, SIGNATURE_NAME, Manifest, sha256_file
from bmsdk.signing import fingerprint, generate_keypair, load_public_key


@pytest.fixture(autouse=True)
def _no_key_from_the_environment(monkeypatch):
    monkeypatch.delenv(PUBLIC_KEY_ENV, raising=False)


@pytest.fixture
def keys(tmp_path):
    """(private, public) PEM paths of a fresh key pair."""
    return generate_keypair(tmp_path / "me")


@pytest.fixture
def other_keys(tmp_path):
    return generate_keypair(tmp_path / "someone-else")


@pytest.fixture
def artifact(cnn_onnx_artifact, tmp_path):
    """A private, unsigned copy of a converted artifact that a test may sign or damage."""
    return shutil.copytree(cnn_onnx_artifact.path, tmp_path / "cnn.bmsdk")


@pytest.fixture
def signed(artifact, keys):
    sign_artifact(artifact, keys[0])
    return artifact


def rsa_pems(tmp_path):
    """(private, public) PEM paths of an RSA key: valid PEM keys of the wrong algorithm."""
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private, public = tmp_path / "rsa.pem", tmp_path / "rsa.pub.pem"
    private.write_bytes(key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def rewrite_manifest(folder, edit) -> None:
    """Apply `edit` to the manifest and recompute every checksum: a consistent tamper the checksums cannot see."""
    manifest = Manifest.read(folder)
    edit(manifest)
    manifest.files = file_checksums(folder)
    manifest.write(folder)


# --- the good path -----------------------------------------------------------------------


def test_keygen_writes_a_pem_pair_with_a_private_private_key(keys):
    private, public = keys
    assert private.name == "me.pem" and public.name == "me.pub.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")  # PKCS8, unencrypted
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")  # SubjectPublicKeyInfo


def test_keygen_never_overwrites(keys):
    before = keys[0].read_bytes()
    with pytest.raises(SigningKeyError, match="already exists"):
        generate_keypair(keys[0].with_name("me"))
    assert keys[0].read_bytes() == before


def test_signed_artifact_verifies_loads_and_predicts(signed, keys):
    private, public = keys
    record = json.loads((signed / SIGNATURE_NAME).read_text())
    assert record["algorithm"] == "ed25519"
    assert record["public_key_sha256"] == fingerprint(load_public_key(public))
    assert verify_artifact(signed, public) == record["public_key_sha256"]
    image = digit_images(1, seed=3)[0]
    with bmsdk.load(signed) as plain:
        expected = plain.predict(image)
    for key in (public, str(public), public.read_bytes(), public.read_text()):  # path or PEM
        with bmsdk.load(signed, public_key=key) as model:
            assert model.predict(image) == expected


def test_resigning_replaces_the_signature_without_leftovers(signed, keys, other_keys):
    sign_artifact(signed, other_keys[0])
    verify_artifact(signed, other_keys[1])
    with pytest.raises(SignatureError, match="signed by key"):
        verify_artifact(signed, keys[1])
    listed = set(Manifest.read(signed).files) | {MANIFEST_NAME, SIGNATURE_NAME}
    assert {p.relative_to(signed).as_posix() for p in signed.rglob("*") if p.is_file()} == listed


def test_an_unsigned_load_ignores_bmsdk_sig(artifact):
    (artifact / SIGNATURE_NAME).write_text("not a signature")
    with bmsdk.load(artifact) as model:
        assert model.manifest.model_file == "model.onnx"


# --- tampering -----------------------------------------------------------------------------


def test_edited_manifest_with_consistent_checksums_is_refused(signed, keys):
    rewrite_manifest(signed, lambda m: m.postprocessing.update(labels=[f"digit {i}" for i in range(10)]))
    open_artifact(signed)  # the checksums alone see nothing wrong
    with pytest.raises(SignatureError, match="does not match its signature"):
        bmsdk.load(signed, public_key=keys[1])


def test_swapped_model_file_and_checksum_are_refused(signed, keys):
    model = signed / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="model.onnx does not match the sha256") as info:
        open_artifact(signed, public_key=keys[1])  # the signature is good; the checksum catches the file
    assert not isinstance(info.value, SignatureError)
    rewrite_manifest(signed, lambda m: None)  # now the manifest pins the swapped file
    open_artifact(signed)
    with pytest.raises(SignatureError, match="does not match its signature"):
        open_artifact(signed, public_key=keys[1])


def test_with_a_key_checksums_are_verified_even_when_verify_is_false(signed, keys):
    with open(signed / "samples.npz", "ab") as f:
        f.write(b"\0")
    bmsdk.load(signed, verify=False).close()
    with pytest.raises(IntegrityError, match="samples.npz"):
        bmsdk.load(signed, verify=False, public_key=keys[1])


def test_the_signature_is_checked_before_the_manifest_is_parsed(signed, keys):
    (signed / MANIFEST_NAME).write_text("{ not json")
    with pytest.raises(ManifestError):
        open_artifact(signed)
    with pytest.raises(SignatureError):
        open_artifact(signed, public_key=keys[1])


def test_the_manifest_used_is_the_one_whose_signature_was_checked(signed, keys, monkeypatch):
    """A bmsdk.json swapped right after the signature check is not what the load goes on with."""
    import bmsdk.artifact

    check = bmsdk.artifact.check_signature

    def check_then_swap(folder, data, *args):
        check(folder, data, *args)
        rewrite_manifest(folder, lambda m: setattr(m, "name", "swapped"))

    monkeypatch.setattr(bmsdk.artifact, "check_signature", check_then_swap)
    _, manifest = open_artifact(signed, public_key=keys[1])
    assert Manifest.read(signed).name == "swapped" and manifest.name != "swapped"


def test_another_keys_signature_is_refused_naming_the_signer(signed, keys, other_keys):
    with pytest.raises(SignatureError, match=f"signed by key sha256:{fingerprint(load_public_key(keys[1]))[:16]}"):
        bmsdk.load(signed, public_key=other_keys[1])


def test_a_signature_claiming_the_right_key_is_still_checked(signed, keys, other_keys):
    """The fingerprint in bmsdk.sig is only a hint: a signature by another key under our fingerprint fails."""
    sign_artifact(signed, other_keys[0])
    record = json.loads((signed / SIGNATURE_NAME).read_text())
    record["public_key_sha256"] = fingerprint(load_public_key(keys[1]))
    (signed / SIGNATURE_NAME).write_text(json.dumps(record))
    with pytest.raises(SignatureError, match="does not match its signature"):
        open_artifact(signed, public_key=keys[1])


def test_unsigned_artifact_is_refused_when_a_key_is_given(artifact, keys):
    with pytest.raises(SignatureError, match="not signed") as info:
        bmsdk.load(artifact, public_key=keys[1])
    assert "bmsdk sign" in info.value.fix


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{ nope", "not a readable JSON"),
        ("[]", "not a JSON object"),
        ('{"algorithm": "ed25519", "public_key_sha256": "00"}', "no string field 'signature'"),
        ('{"algorithm": "rsa", "public_key_sha256": "00", "signature": ""}', "algorithm 'rsa'"),
        ('{"algorithm": "ed25519", "public_key_sha256": "00", "signature": "***"}', "not base64"),
        ('{"algorithm": "ed25519", "public_key_sha256": "00", "signature": "AAAA"}', "not 64 bytes"),
    ],
)
def test_malformed_signature_files_are_refused(signed, keys, content, problem):
    (signed / SIGNATURE_NAME).write_text(content)
    with pytest.raises(SignatureError, match="malformed") as info:
        open_artifact(signed, public_key=keys[1])
    assert problem in info.value.problem


def test_the_environment_variable_makes_verification_mandatory(signed, keys, other_keys, monkeypatch, tmp_path):
    unsigned = shutil.copytree(signed, tmp_path / "unsigned.bmsdk")
    (unsigned / SIGNATURE_NAME).unlink()
    monkeypatch.setenv(PUBLIC_KEY_ENV, str(keys[1]))
    bmsdk.load(signed).close()
    for verify in (True, False):  # verify=False skips checksums, never a required signature
        with pytest.raises(SignatureError, match=r"required by \$BMSDK_PUBLIC_KEY"):
            bmsdk.load(unsigned, verify=verify)
    monkeypatch.setenv(PUBLIC_KEY_ENV, str(other_keys[1]))
    with pytest.raises(SignatureError, match="signed by key"):
        bmsdk.load(signed)
    monkeypatch.setenv(PUBLIC_KEY_ENV, str(tmp_path / "gone.pub.pem"))
    with pytest.raises(SigningKeyError, match=r"gone.pub.pem \(from \$BMSDK_PUBLIC_KEY\) does not exist") as info:
        bmsdk.load(signed)
    assert "unset it" in info.value.fix


# --- extra files ---------------------------------------------------------------------------


@pytest.mark.parametrize("extra", ["extra.bin", "model.data/evil.py"])
def test_a_file_the_manifest_does_not_list_is_refused(artifact, extra):
    (artifact / extra).parent.mkdir(parents=True, exist_ok=True)
    (artifact / extra).write_bytes(b"surprise")
    with pytest.raises(IntegrityError, match=f"does not list {extra}"):
        open_artifact(artifact)
    with pytest.raises(IntegrityError, match=f"does not list {extra}"):
        sign_artifact(artifact, generate_keypair(artifact.parent / "k")[0])
    assert not (artifact / SIGNATURE_NAME).exists()


def test_a_corrupted_artifact_is_never_signed(artifact, keys):
    with open(artifact / "samples.npz", "ab") as f:
        f.write(b"\0")
    with pytest.raises(IntegrityError, match="samples.npz"):
        sign_artifact(artifact, keys[0])
    assert not (artifact / SIGNATURE_NAME).exists()


def test_checksums_leave_out_the_manifest_and_signature_only(signed):
    (signed / "sub").mkdir()
    (signed / "sub" / MANIFEST_NAME).write_text("{}")  # a nested file of that name is an ordinary file
    sums = file_checksums(signed)
    assert MANIFEST_NAME not in sums and SIGNATURE_NAME not in sums
    assert sums[f"sub/{MANIFEST_NAME}"] == sha256_file(signed / "sub" / MANIFEST_NAME)


# --- bad keys ------------------------------------------------------------------------------


def test_bad_private_keys_are_typed_errors(artifact, keys, tmp_path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("hello")
    rsa_private, _ = rsa_pems(tmp_path)
    cases = [
        (tmp_path / "missing.pem", "does not exist"),
        (garbage, "not a PEM private key"),
        (keys[1], "is a public key"),
        (rsa_private, r"not an Ed25519 key \(it is RSA\)"),
    ]
    for key, message in cases:
        with pytest.raises(SigningKeyError, match=message):
            sign_artifact(artifact, key)
    assert not (artifact / SIGNATURE_NAME).exists()


def test_an_encrypted_private_key_is_a_typed_error(artifact, tmp_path):
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = tmp_path / "locked.pem"
    path.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            s.Encoding.PEM, s.PrivateFormat.PKCS8, s.BestAvailableEncryption(b"secret")
        )
    )
    with pytest.raises(SigningKeyError, match="encrypted"):
        sign_artifact(artifact, path)


def test_bad_public_keys_are_typed_errors(signed, keys, tmp_path):
    _, rsa_public = rsa_pems(tmp_path)
    cases = [
        (tmp_path / "missing.pub.pem", "does not exist"),
        (b"not a key", "not a PEM public key"),
        (keys[0], "is a private key"),
        (rsa_public, "not an Ed25519 key"),
    ]
    for key, message in cases:
        with pytest.raises(SigningKeyError, match=message):
            bmsdk.load(signed, public_key=key)


def test_missing_cryptography_names_the_extra(signed, keys, monkeypatch):
    monkeypatch.setitem(sys.modules, "cryptography", None)  # import cryptography now fails
    with pytest.raises(BackendUnavailableError, match="cryptography") as info:
        open_artifact(signed, public_key=keys[1])
    assert info.value.fix == "pip install 'bmsdk[sign]'"


def test_signing_does_not_make_import_bmsdk_heavy():
    code = (
        "import sys, bmsdk, bmsdk.signing, bmsdk.cli; "
        "print(sorted(m for m in ('torch', 'cryptography') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# --- the command line ----------------------------------------------------------------------


def one_error_line(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_cli_keygen_sign_verify(artifact, tmp_path, capsys):
    name = tmp_path / "release"
    assert main(["keygen", "-o", str(name)]) == 0
    private, public = tmp_path / "release.pem", tmp_path / "release.pub.pem"
    assert private.is_file() and public.is_file()
    assert main(["keygen", "-o", str(name)]) == 2
    one_error_line(capsys, "already exists")

    assert main(["verify", str(artifact), "--public-key", str(public)]) == 2
    one_error_line(capsys, "not signed")
    assert main(["sign", str(artifact), "--key", str(private)]) == 0
    assert "signed" in capsys.readouterr().out
    assert main(["verify", str(artifact), "--public-key", str(public)]) == 0
    assert "signature good" in capsys.readouterr().out

    rewrite_manifest(artifact, lambda m: m.postprocessing.update(labels=list("abcdefghij")))
    assert main(["verify", str(artifact), "--public-key", str(public)]) == 2
    one_error_line(capsys, "does not match its signature")


def test_cli_verify_takes_the_key_from_the_environment(signed, keys, other_keys, monkeypatch, capsys):
    assert main(["verify", str(signed)]) == 2
    one_error_line(capsys, "public key", "--public-key")
    monkeypatch.setenv(PUBLIC_KEY_ENV, str(other_keys[1]))
    assert main(["verify", str(signed)]) == 2
    one_error_line(capsys, "signed by key")
    monkeypatch.setenv(PUBLIC_KEY_ENV, str(keys[1]))
    assert main(["verify", str(signed)]) == 0


def test_cli_bad_inputs_exit_2_with_one_line(signed, keys, tmp_path, capsys):
    artifact = signed
    rsa_private, _ = rsa_pems(tmp_path)
    cases = [
        (["sign", str(artifact), "--key", str(tmp_path / "nope.pem")], "does not exist"),
        (["sign", str(artifact), "--key", str(keys[1])], "is a public key"),
        (["sign", str(artifact), "--key", str(rsa_private)], "not an Ed25519 key"),
        (["sign", str(tmp_path / "nothing.bmsdk"), "--key", str(keys[0])], "does not exist"),
        (["verify", str(signed), "--public-key", str(keys[0])], "is a private key"),
        (["verify", str(tmp_path / "nothing.bmsdk"), "--public-key", str(keys[1])], "does not exist"),
    ]
    for argv, word in cases:
        assert main(argv) == 2, argv
        one_error_line(capsys, word)


def test_cli_predict_inspect_validate_take_public_key(signed, keys, other_keys, tmp_path, capsys):
    npy = tmp_path / "digit.npy"
    np.save(npy, digit_images(1, seed=5))
    good, wrong = str(keys[1]), str(other_keys[1])
    assert main(["predict", str(signed), str(npy), "--public-key", good]) == 0
    assert main(["inspect", str(signed), "--public-key", good]) == 0
    assert "signature: verified" in capsys.readouterr().out
    assert main(["validate", str(signed), "--public-key", good]) == 0
    capsys.readouterr()
    for command in (["predict", str(signed), str(npy)], ["inspect", str(signed)], ["validate", str(signed)]):
        assert main([*command, "--public-key", wrong]) == 2
        one_error_line(capsys, "signed by key")
    unsigned = shutil.copytree(signed, tmp_path / "unsigned.bmsdk")
    os.remove(unsigned / SIGNATURE_NAME)
    assert main(["inspect", str(unsigned), "--public-key", good]) == 2
    one_error_line(capsys, "not signed")
    assert main(["inspect", str(signed)]) == 0
    assert "not checked" in capsys.readouterr().out


def test_cli_help_describes_signing(capsys):
    for command in ("keygen", "sign", "verify"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "key" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert "--public-key" in capsys.readouterr().out


def test_signature_survives_base64_roundtrip_only_when_untouched(signed, keys):
    """One flipped bit in the signature itself is refused."""
    record = json.loads((signed / SIGNATURE_NAME).read_text())
    raw = bytearray(base64.b64decode(record["signature"]))
    raw[0] ^= 1
    record["signature"] = base64.b64encode(bytes(raw)).decode()
    (signed / SIGNATURE_NAME).write_text(json.dumps(record))
    with pytest.raises(SignatureError, match="does not match its signature"):
        open_artifact(signed, public_key=keys[1])
