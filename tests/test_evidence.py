"""Evidence items, the reader hook, wrapping of misbehaving readers, the conformance kit, and
combining evidence with the forensic answer (agreement, summary line, --trust-metadata)."""

from __future__ import annotations

import dataclasses
import json
import types

import pytest

from attrib import hookimpl
from attrib.errors import EvidenceError
from attrib.evidence import (Evidence, agreement, decide_with_evidence, evidence_readers, name_key, names_for,
                             read_evidence, strongest, summary_line)
from attrib.host.manager import evidence_reader_specs, plugin_infos, pm
from attrib.testing import check_evidence_reader

from evidence_files import encode, png_with_text


def c2pa_item(verified, generator="dall-e-3", label="DALL·E 3", **detail):
    return Evidence(kind="c2pa", claim="claim generator ChatGPT", generator=generator, label=label,
                    ai_generated=True, verified=verified, detail=detail)


EXIF_MJ = Evidence(kind="exif", claim="Software: Midjourney", generator="midjourney", label="Midjourney",
                   ai_generated=True, detail={"field": "Software"})
CAMERA_XMP = Evidence(kind="xmp", claim="DigitalSourceType: digitalCapture", ai_generated=False,
                      detail={"field": "DigitalSourceType"})
NOTHING = Evidence(kind="xmp", claim="CreatorTool: Canva", detail={"field": "CreatorTool"})
CHECKPOINT = Evidence(kind="generation-parameters", claim="{...}", generator="mymix-v3", label="myMix_v3_fp16",
                      ai_generated=True, known=False, detail={"tool": "ComfyUI"})


@pytest.fixture
def reader_plugin():
    registered = []

    def add(*readers, name="test-evidence-plugin"):
        module = types.ModuleType(name)

        @hookimpl
        def register_evidence(register):
            for reader in readers:
                register(reader)

        module.register_evidence = register_evidence
        pm.register(module, name=name)
        registered.append(module)

    yield add
    for module in registered:
        pm.unregister(module)


class Stamp:
    """Finds the word STAMP anywhere in the file."""

    name = "stamp"
    kind = "watermark"
    generator_names = [{"generator": "stamp-gen", "label": "Stamp Generator", "patterns": ["\\bstamp\\b"]}]

    def read(self, source):
        if b"STAMP" not in source.data:
            return []
        rule = source.names.match("made by STAMP", "watermark")
        return [Evidence(kind="watermark", claim="STAMP", generator=rule.generator, label=rule.label, ai_generated=True)]


class Crashes:
    name = "crashes"

    def read(self, source):
        raise ZeroDivisionError("boom")


class ReturnsJunk:
    name = "junk"

    def read(self, source):
        return {"not": "a list"}


def test_evidence_item_is_checked_clipped_and_json_ready():
    item = Evidence(kind="exif", claim="x" * 5000, detail={"blob": b"\x00\xff" * 500, "deep": [[[[[1]]]]]})
    assert len(item.claim) < 400 and "5,000 characters" in item.claim
    assert json.loads(json.dumps(item.to_dict()))["kind"] == "exif"
    assert set(item.to_dict()) == {"kind", "claim", "generator", "label", "ai_generated", "verified", "detail", "error",
                                   "reader", "known"}
    with pytest.raises(ValueError):
        Evidence(kind="c2pa", verified="maybe")
    failure = Evidence.failure("c2pa", "broken")
    assert failure.error == "broken" and not failure.names_something


def test_evidence_item_is_strict_json_whatever_a_reader_gives_it():
    lone = "a\ud800b"
    item = Evidence(kind="generation-parameters", claim=lone * 200, generator=lone, label=lone, reader=lone,
                    detail={lone: [lone, float("nan"), float("inf"), -float("inf"), 1.5], "n": {"x": float("nan")}})
    text = json.dumps(item.to_dict(), ensure_ascii=False, allow_nan=False)  # raises on NaN / Infinity
    text.encode("utf-8")  # raises on a lone surrogate
    assert item.generator == item.label == "a\ufffdb" and item.known is True
    assert item.detail == {"a\ufffdb": ["a\ufffdb", None, None, None, 1.5], "n": {"x": None}}
    assert "600 characters" in item.claim
    assert dataclasses.replace(item, reader="again").claim == item.claim  # clipping twice changes nothing
    assert Evidence(kind="exif").known is None  # names nothing: neither known nor unknown
    with pytest.raises(ValueError):
        Evidence(kind="exif", generator="x", known="no")


def test_builtins_register_through_the_hook_in_order():
    specs = evidence_reader_specs()
    assert list(specs)[:4] == ["c2pa", "generation-parameters", "exif", "xmp"]
    assert {s.plugin for s in specs.values()} == {"attrib.evidence.builtin"}
    info = {i.name: i for i in plugin_infos()}["attrib.evidence.builtin"]
    assert [r.name for r in info.evidence_readers] == list(specs)[:4] and "register_evidence" in info.hooks


def test_a_plugin_reader_runs_after_the_builtins_and_adds_names(reader_plugin):
    reader_plugin(Stamp)
    assert [type(r).__name__ for r in evidence_readers()][-1] == "Stamp"
    items = read_evidence(data=encode("PNG") + b"STAMP")
    assert [(e.kind, e.generator, e.reader) for e in items] == [("watermark", "stamp-gen", "stamp")]
    assert read_evidence(data=encode("PNG")) == []


def test_a_crashing_or_misbehaving_reader_is_one_error_line_and_the_rest_still_run(reader_plugin):
    reader_plugin(Crashes, ReturnsJunk)
    items = read_evidence(data=png_with_text(Software="x", parameters="Steps: 2, Model: sd_xl_base_1.0"))
    by_reader = {e.reader: e for e in items}
    assert by_reader["generation-parameters"].generator == "sdxl"
    assert by_reader["crashes"].error == "reader 'crashes' failed: ZeroDivisionError: boom"
    assert "returned dict, not a list of Evidence" in by_reader["junk"].error


def test_a_file_pillow_cannot_open_is_one_metadata_error():
    items = read_evidence(data=b"not an image at all")
    assert [(e.kind, e.error) for e in items] == [("metadata", "metadata cannot be read: not a recognised image file")]


def test_read_evidence_reads_the_path_and_says_when_it_cannot(tmp_path):
    path = tmp_path / "a.png"
    path.write_bytes(png_with_text(parameters="Steps: 2, Model: sd_xl_base_1.0"))
    assert read_evidence(path)[0].generator == "sdxl"
    with pytest.raises(EvidenceError, match="cannot be read"):
        read_evidence(tmp_path / "missing.png")


def test_a_bad_names_file_or_trust_list_is_one_error(tmp_path, monkeypatch):
    bad = tmp_path / "names.json"
    bad.write_text('{"generators": [{"generator": "x", "patterns": ["("]}]}')
    monkeypatch.setenv("ATTRIB_GENERATOR_NAMES", str(bad))
    with pytest.raises(EvidenceError, match="not a valid regular expression"):
        names_for(evidence_readers())
    assert read_evidence(data=encode("PNG")) == []  # nothing to name: the rules are never built
    items = read_evidence(data=png_with_text(parameters="Steps: 2, Model: sd_xl_base_1.0"))
    assert len(items) == 1 and "not a valid regular expression" in items[0].error
    monkeypatch.delenv("ATTRIB_GENERATOR_NAMES")
    not_pem = tmp_path / "trust.pem"
    not_pem.write_text("hello")
    with pytest.raises(EvidenceError, match="no PEM certificate"):
        read_evidence(data=encode("PNG"), c2pa_trust=not_pem)


def test_conformance_kit_catches_readers_that_raise_or_claim_on_stripped_files():
    with pytest.raises(AssertionError, match="'crashes'.*ZeroDivisionError"):
        check_evidence_reader(Crashes, speed=False)

    class ClaimsEverything:
        name = "liar"

        def read(self, source):
            return [Evidence(kind="exif", ai_generated=True)]

    with pytest.raises(AssertionError, match="stripped files claim nothing"):
        check_evidence_reader(ClaimsEverything, speed=False)
    with pytest.raises(AssertionError, match="examples"):
        check_evidence_reader(Stamp, examples={"unmarked": encode("PNG")}, speed=False)
    report = check_evidence_reader(Stamp, examples={"marked": encode("PNG") + b"STAMP"})
    assert "examples" in dict(report.checks) and report.ms_per_file > 0 and "stamp" in str(report)


def test_strongest_prefers_signed_then_parameters_then_exif():
    params = Evidence(kind="generation-parameters", claim="...", generator="sdxl", ai_generated=True)
    assert strongest([EXIF_MJ, params, c2pa_item("untrusted")]).kind == "c2pa"
    assert strongest([EXIF_MJ, params, c2pa_item("invalid")]).kind == "generation-parameters"
    assert strongest([NOTHING]) is None
    assert strongest([CAMERA_XMP, EXIF_MJ], naming=True) is EXIF_MJ
    assert strongest([CHECKPOINT, params], naming=True) is params  # equal rank: the known name first


def test_summary_line():
    assert summary_line([]) is None and summary_line([NOTHING]) is None
    untrusted = c2pa_item("untrusted", trust="signer not verified against a trust list")
    assert summary_line([untrusted]) == \
        "file says: DALL·E 3 (C2PA, signature valid, signer not verified against a trust list)"
    assert summary_line([c2pa_item("invalid", failures=["assertion.dataHash.mismatch"]), NOTHING]) == \
        "file says: DALL·E 3 (C2PA, signature invalid: assertion.dataHash.mismatch)"
    assert summary_line([untrusted, EXIF_MJ]).endswith("; other evidence names Midjourney")
    assert summary_line([CAMERA_XMP]) == "file says: not AI-generated (XMP DigitalSourceType, unsigned)"
    assert summary_line([CHECKPOINT]) == \
        "file says: model myMix_v3_fp16 (not a known generator) (ComfyUI generation parameters, unsigned)"
    broken = Evidence(kind="c2pa", verified="invalid", error="C2PA manifest store cannot be read: truncated")
    assert summary_line([broken]) == "file says: nothing readable (C2PA manifest store cannot be read: truncated)"


def test_agreement():
    enrolled = {"dalle3", "sdxl"}
    says = agreement([c2pa_item("untrusted")], "dalle3", enrolled)
    assert (says["generator"], says["enrolled"], says["enrolled_as"], says["agrees"]) == ("dall-e-3", True, "dalle3", True)
    assert agreement([c2pa_item("untrusted")], "sdxl", enrolled)["agrees"] is False
    assert agreement([c2pa_item("untrusted")], None, enrolled)["agrees"] is False
    not_enrolled = agreement([EXIF_MJ], None, enrolled)
    assert (not_enrolled["enrolled"], not_enrolled["agrees"]) == (False, True)
    assert agreement([EXIF_MJ], "sdxl", enrolled)["agrees"] is False
    assert agreement([CAMERA_XMP], "sdxl", enrolled)["agrees"] is False
    assert agreement([NOTHING], "sdxl", enrolled)["agrees"] is None
    assert agreement([], None, enrolled)["generator"] is None
    unknown = agreement([CHECKPOINT], "sdxl", enrolled)  # a model outside the name rules: nothing to compare
    assert (unknown["generator"], unknown["enrolled"], unknown["agrees"]) == ("mymix-v3", False, None)
    assert "model myMix_v3_fp16 (not a known generator)" in unknown["reason"]
    assert agreement([CHECKPOINT], "sdxl", {"myMix-v3", "sdxl"})["agrees"] is False  # enrolled: compared
    assert agreement([CHECKPOINT], "myMix-v3", {"myMix-v3", "sdxl"})["agrees"] is True


def test_trust_metadata_lets_only_trusted_signatures_decide():
    enrolled = {"dalle3", "sdxl"}
    assert decide_with_evidence("sdxl", [c2pa_item("valid")], enrolled)["decided_by"] == "forensic"
    decided = decide_with_evidence("sdxl", [c2pa_item("valid")], enrolled, trust_metadata=True)
    assert (decided["decision"], decided["decided_by"], decided["forensic_decision"]) == ("dalle3", "c2pa", "sdxl")
    decided = decide_with_evidence("unknown", [c2pa_item("valid", "gpt-image-1", "GPT Image 1")], enrolled, True)
    assert (decided["decision"], decided["decided_by"]) == ("gpt-image-1", "c2pa")
    for weaker in (c2pa_item("untrusted"), c2pa_item("invalid"), EXIF_MJ):
        decided = decide_with_evidence("sdxl", [weaker], enrolled, trust_metadata=True)
        assert (decided["decision"], decided["decided_by"]) == ("sdxl", "forensic") and decided["note"]
    assert "--c2pa-trust" in decide_with_evidence("sdxl", [c2pa_item("untrusted")], enrolled, True)["note"]


def test_name_key():
    assert name_key("GPT-4o") == name_key("gpt4o") == name_key("gpt_4o")
    assert name_key("sd3.5-large") == name_key("SD35_Large") != name_key("sd3-large")
