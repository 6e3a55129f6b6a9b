"""``attrib inspect``: evidence alone, no gallery; one line per problem; exit status."""

from __future__ import annotations

import json

from click.testing import CliRunner

from attrib.cli import cli

from evidence_files import A1111, MIDJOURNEY_XMP, comfy_png, encode, png_with_text, png_with_xmp


def inspect(*args, gallery=None):
    runner = CliRunner()
    base = ["--gallery", str(gallery)] if gallery else []
    return runner.invoke(cli, [*base, "inspect", *map(str, args)])


def test_inspect_prints_a_summary_and_one_line_per_item_without_a_gallery(tmp_path):
    (tmp_path / "a1111.png").write_bytes(png_with_text(parameters=A1111))
    (tmp_path / "mj.png").write_bytes(png_with_xmp(MIDJOURNEY_XMP))
    (tmp_path / "stripped.jpg").write_bytes(encode("JPEG"))
    missing_gallery = tmp_path / "no-gallery-here"
    result = inspect(tmp_path, gallery=missing_gallery)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].endswith("a1111.png: file says: Stable Diffusion XL (AUTOMATIC1111 generation parameters, unsigned)")
    assert lines[1].startswith("  generation-parameters [Stable Diffusion XL; AI-generated]: a castle on a hill")
    assert lines[2].endswith("mj.png: file says: AI-generated (XMP DigitalSourceType, unsigned)")
    assert lines[4].endswith("stripped.jpg: no provenance evidence (no metadata, or it was stripped)")
    assert not missing_gallery.exists()


def test_inspect_json_is_one_object_per_file_with_every_field(tmp_path):
    (tmp_path / "comfy.png").write_bytes(comfy_png())
    (tmp_path / "stripped.webp").write_bytes(encode("WEBP"))
    result = inspect("--json", tmp_path)
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["path"].rsplit("/", 1)[1] for r in rows] == ["comfy.png", "stripped.webp"]
    item = rows[0]["evidence"][0]
    assert (item["kind"], item["generator"], item["ai_generated"], item["verified"], item["error"]) == \
        ("generation-parameters", "flux1-dev", True, None, None)
    assert rows[1]["evidence"] == []


def test_hostile_and_unreadable_inputs_are_one_line_each_and_the_rest_goes_on(tmp_path):
    (tmp_path / "a.png").write_bytes(png_with_text(prompt="{not json"))
    (tmp_path / "b.png").write_bytes(b"not an image")
    (tmp_path / "c.png").write_bytes(png_with_text(parameters=A1111))
    result = inspect("--json", tmp_path, tmp_path / "gone.png")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "gone.png: no such file" in result.output  # collected paths are checked first
    result = inspect("--json", tmp_path)
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert result.exit_code == 1  # b.png is not an image
    assert rows[0]["evidence"][0]["error"] == "'prompt' is not valid JSON (ComfyUI writes its graph there)"
    assert rows[1]["evidence"][0]["kind"] == "metadata"
    assert rows[2]["evidence"][0]["generator"] == "sdxl"


def test_a_bad_trust_list_is_one_line(tmp_path):
    (tmp_path / "a.png").write_bytes(encode("PNG"))
    (tmp_path / "trust.pem").write_text("not a certificate")
    result = inspect("--c2pa-trust", tmp_path / "trust.pem", tmp_path / "a.png")
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "no PEM certificate" in result.output


def test_plugins_lists_the_evidence_readers():
    result = CliRunner().invoke(cli, ["plugins", "--json"])
    rows = {r["name"]: r for r in json.loads(result.output)}
    readers = [r["name"] for r in rows["attrib.evidence.builtin"]["evidence_readers"]]
    assert readers == ["c2pa", "generation-parameters", "exif", "xmp"]
    assert rows["attrib.extractors.residual"]["evidence_readers"] == []
