"""C2PA manifests signed in the test with a throw-away certificate chain: validation states,
trust lists, tampering, damaged stores, --trust-metadata, and c2pa imported only when needed."""

from __future__ import annotations

import datetime
import io
import json
import subprocess
import sys

import pytest

c2pa = pytest.importorskip("c2pa")
from cryptography import x509  # noqa: E402 - c2pa-python brings cryptography
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

from attrib.evidence import decide_with_evidence, read_evidence, summary_line  # noqa: E402
from attrib.evidence.containers import manifest_store_format  # noqa: E402

from evidence_files import encode  # noqa: E402

MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
OPENAI_LIKE = {
    "claim_generator_info": [{"name": "ChatGPT", "version": "1.0"}], "title": "image",
    "assertions": [{"label": "c2pa.actions", "data": {"actions": [{
        "action": "c2pa.created", "softwareAgent": {"name": "DALL·E"},
        "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"}]}}],
}
CAMERA = {"claim_generator_info": [{"name": "Test Camera", "version": "2"}], "title": "photo",
          "assertions": [{"label": "c2pa.actions", "data": {"actions": [{
              "action": "c2pa.created",
              "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"}]}}]}


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Attrib Test Org")])


def _certificate(subject, key, issuer, issuer_key, ca):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=7))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), True)
    else:
        builder = (builder.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False))
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A throw-away root CA, a signer it issued, and an unrelated root; PEM files on disk."""
    root_key, signer_key, other_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _certificate("Attrib Test Root", root_key, "Attrib Test Root", root_key, ca=True)
    signer = _certificate("Attrib Test Signer", signer_key, "Attrib Test Root", root_key, ca=False)
    other = _certificate("Unrelated Root", other_key, "Unrelated Root", other_key, ca=True)
    folder = tmp_path_factory.mktemp("pki")
    (folder / "root.pem").write_bytes(_pem(root))
    (folder / "other.pem").write_bytes(_pem(other))
    key = signer_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    return {"chain": _pem(signer) + _pem(root), "key": key, "root": folder / "root.pem", "other": folder / "other.pem"}


def sign(pki, fmt="PNG", manifest=OPENAI_LIKE) -> bytes:
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, pki["chain"], pki["key"], None))
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    out = io.BytesIO()
    with c2pa.Builder(manifest, context=context) as builder:
        builder.sign(signer, MIME[fmt], io.BytesIO(encode(fmt, lossless=True) if fmt == "WEBP" else encode(fmt)), out)
    return out.getvalue()


@pytest.fixture(scope="module")
def signed_png(pki):
    return sign(pki)


def c2pa_items(data, **kwargs):
    items = [e for e in read_evidence(data=data, **kwargs) if e.kind == "c2pa"]
    assert len(items) == 1, [e.to_dict() for e in items]
    return items[0]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_a_signed_manifest_is_read_from_every_container(pki, fmt):
    data = sign(pki, fmt)
    assert manifest_store_format(data) == MIME[fmt]
    item = c2pa_items(data)
    assert (item.generator, item.label, item.ai_generated, item.verified) == ("dall-e-3", "DALL·E 3", True, "untrusted")
    assert item.detail["claim_generator"] == "ChatGPT 1.0" and item.detail["signer"] == "Attrib Test Signer"
    assert item.detail["actions"][0]["softwareAgent"] == "DALL·E" and item.detail["trust_list"] is False
    assert "c2pa.created by DALL·E (trainedAlgorithmicMedia)" in item.claim


def test_trust_list_makes_it_valid_and_an_unrelated_one_does_not(pki, signed_png):
    trusted = c2pa_items(signed_png, c2pa_trust=pki["root"])
    assert (trusted.verified, trusted.detail["trust"]) == ("valid", "signer on the trust list")
    other = c2pa_items(signed_png, c2pa_trust=pki["other"])
    assert (other.verified, other.detail["trust"]) == ("untrusted", "signer not on the trust list")
    untrusted = c2pa_items(signed_png)
    assert summary_line([untrusted]) == \
        "file says: DALL·E 3 (C2PA, signature valid, signer not verified against a trust list)"
    assert summary_line([trusted]) == "file says: DALL·E 3 (C2PA, signature valid, signer on the trust list)"


def test_the_trust_list_setting_comes_from_the_environment(pki, signed_png, monkeypatch):
    monkeypatch.setenv("ATTRIB_C2PA_TRUST", str(pki["root"]))
    assert c2pa_items(signed_png).verified == "valid"


def test_tampered_pixels_fail_validation_with_the_code(pki):
    data = bytearray(sign(pki, "JPEG"))
    data[-200] ^= 0x01  # inside the entropy-coded image data, after the manifest
    item = c2pa_items(bytes(data), c2pa_trust=pki["root"])
    assert item.verified == "invalid" and "assertion.dataHash.mismatch" in item.detail["failures"]
    assert summary_line([item]) == "file says: DALL·E 3 (C2PA, signature invalid: assertion.dataHash.mismatch)"


def test_a_capture_manifest_says_not_ai_generated(pki):
    item = c2pa_items(sign(pki, "PNG", CAMERA))
    assert (item.generator, item.ai_generated) == (None, False)


def test_damaged_stores_are_one_error_item(signed_png):
    start = signed_png.index(b"caBX") - 4
    length = int.from_bytes(signed_png[start:start + 4], "big")
    body = signed_png[start + 8:start + 8 + length]
    import struct
    import zlib

    def with_store(store):
        chunk = struct.pack(">I", len(store)) + b"caBX" + store + struct.pack(">I", zlib.crc32(b"caBX" + store))
        return signed_png[:start] + chunk + signed_png[start + 12 + length:]

    for damaged in (body[: len(body) // 2], body[:40], bytes(reversed(body))):
        item = c2pa_items(with_store(damaged))
        assert item.error and item.verified == "invalid" and not item.names_something


def test_trust_metadata_decides_only_with_a_trusted_signature(pki, signed_png):
    trusted = read_evidence(data=signed_png, c2pa_trust=pki["root"])
    decided = decide_with_evidence("sdxl", trusted, {"sdxl", "dall-e-3"}, trust_metadata=True)
    assert (decided["decision"], decided["decided_by"], decided["forensic_decision"]) == ("dall-e-3", "c2pa", "sdxl")
    untrusted = read_evidence(data=signed_png)
    decided = decide_with_evidence("sdxl", untrusted, {"sdxl", "dall-e-3"}, trust_metadata=True)
    assert (decided["decision"], decided["decided_by"]) == ("sdxl", "forensic")


def test_inspect_cli_with_and_without_a_trust_list(pki, signed_png, tmp_path):
    from click.testing import CliRunner

    from attrib.cli import cli

    (tmp_path / "signed.png").write_bytes(signed_png)
    (tmp_path / "plain.png").write_bytes(encode("PNG"))
    runner = CliRunner()
    result = runner.invoke(cli, ["inspect", "--json", str(tmp_path)])
    assert result.exit_code == 0, result.output
    rows = {json.loads(line)["path"].rsplit("/", 1)[1]: json.loads(line) for line in result.output.splitlines()}
    assert rows["plain.png"]["evidence"] == []
    assert rows["signed.png"]["evidence"][0]["verified"] == "untrusted"
    result = runner.invoke(cli, ["inspect", "--c2pa-trust", str(pki["root"]), str(tmp_path / "signed.png")])
    assert result.exit_code == 0
    assert result.output.splitlines()[0].endswith(
        "signed.png: file says: DALL·E 3 (C2PA, signature valid, signer on the trust list)")


def test_c2pa_is_imported_only_for_files_with_a_manifest_store(signed_png, tmp_path):
    (tmp_path / "plain.png").write_bytes(encode("PNG"))
    (tmp_path / "signed.png").write_bytes(signed_png)
    probe = ("import sys; from attrib.evidence import read_evidence; read_evidence(sys.argv[1]); "
             "print('c2pa' in sys.modules)")
    run = [subprocess.run([sys.executable, "-c", probe, str(tmp_path / name)], capture_output=True, text=True,
                          check=True).stdout.strip() for name in ("plain.png", "signed.png")]
    assert run == ["False", "True"]


def test_identify_and_verify_show_the_evidence_and_decide_by_it_only_when_trusted(pki, signed_png, tmp_path):
    from click.testing import CliRunner

    from attrib.cli import cli
    from evidence_files import pixels

    runner = CliRunner()
    gallery = ["--gallery", str(tmp_path / "g")]
    samples = []
    for i in range(6):
        samples.append(tmp_path / f"s{i}.png")
        samples[-1].write_bytes(encode("PNG", pixels(seed=100 + i)))
    assert runner.invoke(cli, [*gallery, "enroll", "-g", "dall-e-3", *map(str, samples)]).exit_code == 0
    (tmp_path / "signed.png").write_bytes(signed_png)
    (tmp_path / "plain.png").write_bytes(encode("PNG", pixels(seed=7)))
    queries = [str(tmp_path / "signed.png"), str(tmp_path / "plain.png")]

    def identify(*extra):
        result = runner.invoke(cli, [*gallery, "identify", "--json", *extra, *queries])
        assert result.exit_code == 0, result.output
        return [json.loads(line) for line in result.output.splitlines()]

    signed, plain = identify()
    assert plain["evidence"] == [] and plain["provenance"]["summary"] is None
    assert signed["evidence"][0]["verified"] == "untrusted" and signed["decided_by"] == "forensic"
    assert signed["provenance"]["agreement"]["enrolled_as"] == "dall-e-3"
    # an untrusted signature never decides, even when asked to
    signed_untrusted, _ = identify("--trust-metadata")
    assert signed_untrusted["decision"] == signed["decision"] and signed_untrusted["provenance"]["note"]
    # a signer on the trust list decides when asked, and the forensic answer is kept
    trusted, plain_trusted = identify("--trust-metadata", "--c2pa-trust", str(pki["root"]))
    assert (trusted["decision"], trusted["generator"], trusted["decided_by"]) == ("dall-e-3", "dall-e-3", "c2pa")
    assert trusted["provenance"]["forensic_decision"] == signed["decision"]
    assert "decided by the file's c2pa evidence" in trusted["reason"]
    assert plain_trusted["decision"] == plain["decision"] and plain_trusted["decided_by"] == "forensic"
    # the human line says what the file says; verify lists it too, without changing the match
    human = runner.invoke(cli, [*gallery, "identify", queries[0]])
    assert "| file says: DALL·E 3 (C2PA, signature valid" in human.output
    verified = runner.invoke(cli, [*gallery, "verify", "-g", "dall-e-3", "--json", *queries])
    rows = [json.loads(line) for line in verified.output.splitlines()]
    assert rows[0]["evidence"][0]["kind"] == "c2pa" and rows[1]["evidence"] == []
    assert rows[0]["provenance"]["agreement"]["generator"] == "dall-e-3"
