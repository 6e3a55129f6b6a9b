"""Hostile provenance text (lone surrogates, NaN and Infinity in the tools' JSON, megabyte EXIF and
XMP fields): every file gives exactly one strict JSON line through the CLI, and the run goes on."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from attrib.batch.records import RecordFormat, json_text
from attrib.cli import cli
from attrib.evidence import read_evidence
from attrib.evidence.names import MAX_MATCH_CHARS

from evidence_files import A1111, MEGABYTE, comfy_png, encode, exif, hostile_text_files, pixels, png_with_text


def _no_constants(token):
    raise ValueError(f"{token} is not JSON (RFC 8259)")


def strict_lines(result) -> list[dict]:
    """The records on standard output, each checked to be one line of strict JSON in valid UTF-8."""
    text = result.stdout_bytes.decode("utf-8")  # strict: a lone surrogate would have been refused
    return [json.loads(line, parse_constant=_no_constants) for line in text.splitlines()]


@pytest.fixture(scope="module")
def hostile():
    return hostile_text_files()


def write_between_good_files(folder, hostile) -> list:
    """good, hostile, good, hostile, ..., good: the bad files in the middle of the run."""
    paths = [folder / "00-good.png"]
    paths[0].write_bytes(png_with_text(parameters=A1111))
    for i, data in enumerate(hostile.values(), 1):
        bad, good = folder / f"{i:02d}-bad.{'webp' if data[:4] == b'RIFF' else 'png'}", folder / f"{i:02d}-good.png"
        bad.write_bytes(data)
        good.write_bytes(comfy_png())
        paths += [bad, good]
    return paths


def test_items_of_hostile_text_are_strict_json(hostile):
    for name, data in hostile.items():
        items = read_evidence(data=data)
        assert items and all(item.error is None for item in items), name
        text = json.dumps([item.to_dict() for item in items], ensure_ascii=False, allow_nan=False)
        assert len(text.encode("utf-8")) < 4096, name  # bounded, however long the field


def test_surrogates_become_replacement_characters_and_nan_null(hostile):
    item = read_evidence(data=hostile["InvokeAI surrogate and NaN"])[0]
    assert item.detail["seed"] is None
    assert item.detail["base"] == "\ufffd" and item.label == "m\ufffd" and item.known is False
    nai = read_evidence(data=hostile["NovelAI surrogate and NaN"])[0]
    assert (nai.generator, nai.detail["seed"], nai.detail["sampler"]) == ("novelai", None, "\ufffd")


def test_a_megabyte_field_is_matched_on_its_start_and_says_so(hostile):
    item = read_evidence(data=hostile["WebP EXIF Software of a megabyte"])[0]
    assert (item.generator, item.ai_generated) == ("midjourney", True)
    assert item.detail["long_fields"] == {"Software": len("Midjourney ") + MEGABYTE}
    assert item.detail["match_limit"] == MAX_MATCH_CHARS
    assert item.claim.endswith(f"… ({len('Software: Midjourney ') + MEGABYTE:,} characters)") and len(item.claim) < 400
    late = encode("WEBP", exif=exif({0x0131: "x" * MEGABYTE + " Midjourney"}), lossless=True)
    item = read_evidence(data=late)[0]
    assert item.generator is None and item.detail["long_fields"] == {"Software": MEGABYTE + len(" Midjourney")}
    xmp = read_evidence(data=hostile["XMP description of a megabyte"])[0]
    assert xmp.ai_generated is True and xmp.detail["long_fields"]["description"] > MEGABYTE - 10


def test_inspect_json_gives_every_file_one_strict_line(tmp_path, hostile):
    paths = write_between_good_files(tmp_path, hostile)
    result = CliRunner().invoke(cli, ["inspect", "--json", *map(str, paths)])
    assert result.exception is None and result.exit_code == 0, result.output
    rows = strict_lines(result)
    assert [row["path"] for row in rows] == [str(p) for p in paths]
    assert all(row["evidence"] and all(item["error"] is None for item in row["evidence"]) for row in rows)
    assert {row["evidence"][0]["generator"] for row in rows[2::2]} == {"flux1-dev"}  # every good file after a bad one


def test_identify_json_gives_every_file_one_strict_line(tmp_path, hostile):
    runner = CliRunner()
    gallery = ["--gallery", str(tmp_path / "g")]
    samples = [tmp_path / f"s{i}.png" for i in range(6)]
    for i, sample in enumerate(samples):
        sample.write_bytes(encode("PNG", pixels(seed=100 + i)))
    assert runner.invoke(cli, [*gallery, "enroll", "-g", "sdxl", *map(str, samples)]).exit_code == 0
    folder = tmp_path / "queries"
    folder.mkdir()
    paths = write_between_good_files(folder, hostile)
    for output in ([], ["--output", str(tmp_path / "out.jsonl")]):
        result = runner.invoke(cli, [*gallery, "identify", "--json", *output, *map(str, paths)])
        assert result.exception is None and result.exit_code == 0, result.output
        if output:
            lines = (tmp_path / "out.jsonl").read_bytes().decode("utf-8").splitlines()
            rows = [json.loads(line, parse_constant=_no_constants) for line in lines]
        else:
            rows = strict_lines(result)
        assert [row["path"] for row in rows] == [str(p) for p in paths]
        assert all(row.get("error") is None and row["evidence"] for row in rows)


def test_the_json_writer_never_fails_and_never_writes_a_bare_constant():
    record = {"path": "a\ud800.png", "score": float("nan"), "margin": float("inf"), "nested": [{"x": -math.inf}],
              "object": object(), 3: "key"}
    line = json_text(record)
    parsed = json.loads(line, parse_constant=_no_constants)
    line.encode("utf-8")
    assert parsed["path"] == "a\ufffd.png" and parsed["score"] is None and parsed["nested"] == [{"x": None}]
    assert parsed["3"] == "key" and parsed["object"].startswith("<object object")
    assert json_text({"plain": "é", "n": 1.5}) == '{"plain": "é", "n": 1.5}'  # the common case unchanged
    encoded = RecordFormat("jsonl", ("path",)).encode({"path": "\udcff", "score": float("nan")})
    assert encoded.endswith("\n") and encoded.count("\n") == 1
    assert json.loads(encoded, parse_constant=_no_constants) == {"path": "\ufffd", "score": None}
