"""The built-in evidence readers on files the tests build: generation parameters, EXIF, XMP,
and every hostile case (one item or one error line, never an exception)."""

from __future__ import annotations

import json

import pytest

from attrib.evidence import read_evidence
from attrib.evidence.containers import manifest_store_format
from attrib.evidence.parameters import MAX_PARSE_CHARS, a1111_settings, comfyui_models
from attrib.testing import check_evidence_reader, hostile_files, stripped_files

from evidence_files import (A1111, CAMERA_XMP, COMFY_PROMPT, COMFY_WORKFLOW, MIDJOURNEY_XMP, comfy_png, dall_e_2_exif,
                            encode, exif, png_with_chunk_after_pixels, png_with_text, png_with_xmp, user_comment)


def only(items, kind):
    found = [e for e in items if e.kind == kind]
    assert len(found) == 1, [e.to_dict() for e in items]
    return found[0]


def test_a1111_parameters_name_the_model_and_keep_the_settings():
    item = only(read_evidence(data=png_with_text(parameters=A1111)), "generation-parameters")
    assert (item.generator, item.ai_generated, item.verified, item.error) == ("sdxl", True, None, None)
    assert item.detail["tool"] == "AUTOMATIC1111" and item.detail["models"] == ["sd_xl_base_1.0"]
    assert item.detail["seed"] == "1234" and item.detail["sampler"] == "DPM++ 2M"
    assert item.claim.startswith("a castle on a hill") and item.reader == "generation-parameters"


def test_a1111_settings_keep_quoted_values_and_tell_forge():
    settings = a1111_settings(A1111)
    assert settings["Lora hashes"] == "detail: 0123456789ab" and settings["Model"] == "sd_xl_base_1.0"
    forge = A1111.replace("Model: sd_xl_base_1.0", "Model: juggernautXL_v9").replace("v1.10.1", "f2.0.1v1.10.1")
    item = only(read_evidence(data=png_with_text(parameters=forge)), "generation-parameters")
    assert item.detail["tool"] == "Forge"
    assert item.generator == "sdxl"  # unknown checkpoint name, but the model hash is SDXL base's
    unknown = forge.replace("Model hash: 31e35c80fc, ", "")
    item = only(read_evidence(data=png_with_text(parameters=unknown)), "generation-parameters")
    assert (item.generator, item.label, item.known) == ("juggernautxl-v9", "juggernautXL_v9", False)
    assert item.ai_generated is True and item.detail["models"] == ["juggernautXL_v9"]


def test_comfyui_graph_names_the_loaded_checkpoint_not_the_upscaler():
    assert comfyui_models(COMFY_PROMPT, COMFY_WORKFLOW) == ["flux1-dev.safetensors"]
    assert comfyui_models(None, COMFY_WORKFLOW) == ["sd3.5_large.safetensors"]
    item = only(read_evidence(data=comfy_png()), "generation-parameters")
    assert (item.generator, item.label, item.detail["tool"]) == ("flux1-dev", "FLUX.1 [dev]", "ComfyUI")
    item = only(read_evidence(data=png_with_text(workflow=json.dumps(COMFY_WORKFLOW))), "generation-parameters")
    assert item.generator == "sd3.5-large"


@pytest.mark.parametrize("model, generator, known", [
    ("hidream_i1_dev_bf16.safetensors", "hidream-i1-dev", True), ("qwen_image_fp8_e4m3fn.safetensors", "qwen-image", True),
    ("sd_xl_refiner_1.0.safetensors", "sdxl", True), ("v1-5-pruned-emaonly.safetensors", "sd15", True),
    ("flux1-schnell.safetensors", "flux1-schnell", True), ("v2-1_768-ema-pruned.safetensors", "sd21", True),
    ("Chroma1-HD.safetensors", "chroma", True), ("chroma-unlocked-v47-detail-calibrated.safetensors", "chroma", True),
    ("cosmos_predict2_2B_t2i.safetensors", "cosmos-predict2", True), ("lumina_2.safetensors", "lumina-image-2", True),
    ("omnigen2_fp16.safetensors", "omnigen2", True), ("z_image_turbo_bf16.safetensors", "z-image-turbo", True),
    ("qwen_image_edit_2509_fp8_e4m3fn.safetensors", "qwen-image-edit", True),
    ("hidream_e1_1_bf16.safetensors", "hidream-e1", True), ("hunyuanimage2.1_bf16.safetensors", "hunyuan-image-2.1", True),
    ("wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors", "wan2.2", True),
    ("flux1-krea-dev_fp8_scaled.safetensors", "flux1-krea-dev", True),
    ("juggernautXL_v9.safetensors", "juggernautxl-v9", False),
    ("mixes\\myMix_v3-fp8_e4m3fn.safetensors", "mymix-v3", False), ("0001.ckpt", None, None),
])
def test_comfyui_checkpoint_names(model, generator, known):
    prompt = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": model}}}
    item = only(read_evidence(data=comfy_png(prompt, {})), "generation-parameters")
    assert (item.generator, item.known, item.ai_generated) == (generator, known, True)
    assert item.detail["models"] == [model]


def test_a_checkpoint_outside_the_rules_is_named_from_its_file_and_said_to_be_unknown(tmp_path):
    prompt = {"1": {"class_type": "UNETLoader", "inputs": {"unet_name": "myMix_v3_bf16.safetensors"}}}
    (tmp_path / "a.png").write_bytes(comfy_png(prompt, {}))
    from click.testing import CliRunner

    from attrib.cli import cli

    result = CliRunner().invoke(cli, ["inspect", str(tmp_path / "a.png")])
    assert result.output.splitlines()[0].endswith(
        "file says: model myMix_v3_bf16 (not a known generator) (ComfyUI generation parameters, unsigned)")
    row = json.loads(CliRunner().invoke(cli, ["inspect", "--json", str(tmp_path / "a.png")]).output)
    item = row["evidence"][0]
    assert (item["generator"], item["label"], item["known"]) == ("mymix-v3", "myMix_v3_bf16", False)
    assert "chroma" not in {e.generator for e in read_evidence(data=encode("JPEG", exif=exif({0x010E: "chroma key"})))}


def test_comfyui_webp_exif_fields_and_a1111_jpeg_user_comment():
    webp = encode("WEBP", exif=exif({0x0110: "prompt:" + json.dumps(COMFY_PROMPT), 0x010F: "workflow:{}"}), lossless=True)
    items = read_evidence(data=webp)
    assert only(items, "generation-parameters").generator == "flux1-dev"
    assert not [e for e in items if e.kind == "exif"]  # the graph is not also an EXIF claim
    jpeg = encode("JPEG", exif=exif(sub={0x9286: user_comment(A1111)}))
    items = read_evidence(data=jpeg)
    assert only(items, "generation-parameters").generator == "sdxl"
    assert not [e for e in items if e.kind == "exif"]


def test_novelai_fooocus_and_invokeai():
    nai = png_with_text(Software="NovelAI", Source="NovelAI Diffusion V4.5 4BDE2A90", Description="1girl",
                        Comment=json.dumps({"steps": 28, "sampler": "k_euler_ancestral", "seed": 7}))
    item = only(read_evidence(data=nai), "generation-parameters")
    assert (item.generator, item.detail["tool"], item.detail["seed"]) == ("novelai", "NovelAI", 7)
    fooocus = png_with_text(parameters=json.dumps({"Prompt": "a dog", "Base Model": "sd_xl_base_1.0.safetensors",
                                                   "Version": "Fooocus v2.5.5"}), fooocus_scheme="fooocus")
    item = only(read_evidence(data=fooocus), "generation-parameters")
    assert (item.generator, item.detail["tool"]) == ("sdxl", "Fooocus")
    invoke = png_with_text(invokeai_metadata=json.dumps({"model": {"name": "FLUX Schnell (flux1-schnell)", "base": "flux"},
                                                         "seed": 3}))
    item = only(read_evidence(data=invoke), "generation-parameters")
    assert (item.generator, item.detail["tool"], item.detail["base"]) == ("flux1-schnell", "InvokeAI", "flux")


def test_dall_e_2_exif_user_comment_and_software():
    jpeg = encode("JPEG", exif=exif(sub={0x9286: user_comment("Made with OpenAI DALL-E", b"ASCII\x00\x00\x00", "ascii")}))
    item = only(read_evidence(data=jpeg), "exif")
    assert (item.generator, item.ai_generated, item.detail["field"]) == ("dall-e-2", True, "UserComment")
    png = encode("PNG", exif=exif({0x0131: "Adobe Photoshop 25.0", 0x013B: "Midjourney"}))
    item = only(read_evidence(data=png), "exif")
    assert item.generator == "midjourney" and item.detail["fields"]["Software"] == "Adobe Photoshop 25.0"


@pytest.mark.parametrize("typed_text", [False, True])
@pytest.mark.parametrize("where", ["before the pixels", "after the pixels"])
def test_dall_e_2_png_exif_in_ifd0_names_dall_e_2(where, typed_text):
    body = dall_e_2_exif(typed_text)[len(b"Exif\x00\x00"):]  # an eXIf chunk holds the TIFF data alone
    data = encode("PNG", exif=dall_e_2_exif(typed_text)) if where == "before the pixels" \
        else png_with_chunk_after_pixels(b"eXIf", body)
    item = only(read_evidence(data=data), "exif")
    assert (item.generator, item.label, item.ai_generated, item.known) == ("dall-e-2", "DALL·E 2", True, True)
    assert item.detail["field"] == "UserComment" and item.claim == "UserComment: Made with OpenAI DALL-E"
    assert item.detail["fields"]["MakerNote"] == "OpenAI--0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    note_only = encode("PNG", exif=exif({0x927C: b"OpenAI--0f1e2d3c4b5a6978"}))
    assert only(read_evidence(data=note_only), "exif").generator == "dall-e-2"


@pytest.mark.parametrize("code, codec", [(b"ASCII\x00\x00\x00", "ascii"), (b"UNICODE\x00", "utf-16-be"),
                                         (b"UNICODE\x00", "utf-16-le"), (b"\x00" * 8, "utf-8")])
def test_user_comment_character_codes_are_dropped(code, codec):
    data = encode("PNG", exif=exif({0x9286: user_comment("Made with OpenAI DALL-E", code, codec)}))
    item = only(read_evidence(data=data), "exif")
    assert item.claim == "UserComment: Made with OpenAI DALL-E" and item.generator == "dall-e-2"


def test_user_comment_in_either_utf16_byte_order_and_camera_exif_claims_nothing():
    little = encode("JPEG", exif=exif(sub={0x9286: user_comment("made with DALL·E 3", codec="utf-16-le")}))
    assert only(read_evidence(data=little), "exif").generator == "dall-e-3"
    camera = encode("JPEG", exif=exif({0x010F: "Canon", 0x0110: "Canon EOS R5", 0x0131: "Firmware 1.8.1"}))
    item = only(read_evidence(data=camera), "exif")
    assert item.generator is None and item.ai_generated is None and not item.names_something


def test_xmp_digital_source_type():
    for data in (png_with_xmp(MIDJOURNEY_XMP), encode("JPEG", xmp=MIDJOURNEY_XMP), encode("WEBP", xmp=MIDJOURNEY_XMP)):
        item = only(read_evidence(data=data), "xmp")
        assert item.ai_generated is True and item.detail["digital_source_type"] == "trainedAlgorithmicMedia"
        assert item.generator is None and item.detail["fields"]["description"].startswith("a cat")
    item = only(read_evidence(data=encode("JPEG", xmp=CAMERA_XMP)), "xmp")
    assert (item.ai_generated, item.detail["digital_source_type"], item.generator) == (False, "digitalCapture", None)


def test_a_users_names_file_comes_first(tmp_path, monkeypatch):
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"generators": [{"generator": "house-model", "patterns": ["\\bjuggernaut"]}]}))
    monkeypatch.setenv("ATTRIB_GENERATOR_NAMES", str(names))
    prompt = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "juggernautXL_v9.safetensors"}}}
    assert only(read_evidence(data=comfy_png(prompt, {})), "generation-parameters").generator == "house-model"


def test_stripped_files_give_no_evidence_at_all():
    for key, data in stripped_files().items():
        assert read_evidence(data=data) == [], key
        assert manifest_store_format(data) is None, key


@pytest.mark.parametrize("key", sorted(hostile_files()))
def test_hostile_files_give_one_line_per_problem_and_claim_nothing(key):
    items = read_evidence(data=hostile_files()[key])
    assert all(not e.names_something for e in items), [e.to_dict() for e in items]
    assert len([e for e in items if e.error]) <= 1
    json.dumps([e.to_dict() for e in items])


def test_hostile_files_say_what_is_wrong():
    said = {key: " ".join(e.error for e in read_evidence(data=data) if e.error) for key, data in hostile_files().items()}
    assert f"{MAX_PARSE_CHARS:,}-character limit" in said["PNG text chunk of 3 MB"]
    assert "not valid JSON" in said["ComfyUI prompt that is not JSON"]
    assert "not valid JSON" in said["deeply nested JSON"]
    assert "DTDForbidden" in said["XMP entity expansion"]
    assert "C2PA manifest store cannot be read" in said["C2PA store of garbage"]
    assert "not a recognised image file" in said["random bytes"]


def test_a_broken_text_does_not_hide_the_others():
    data = png_with_text(parameters=A1111, prompt="{broken")
    items = read_evidence(data=data)
    assert only([e for e in items if e.error is None], "generation-parameters").generator == "sdxl"
    assert [e.error for e in items if e.error] == ["'prompt' is not valid JSON (ComfyUI writes its graph there)"]


def test_builtin_readers_pass_the_conformance_kit():
    from attrib.evidence.builtin import BUILTIN_READERS

    examples = {"generation-parameters": {"a1111": png_with_text(parameters=A1111), "comfy": comfy_png()},
                "exif": {"exif": encode("JPEG", exif=exif({0x0131: "Midjourney"}))},
                "xmp": {"xmp": png_with_xmp(MIDJOURNEY_XMP)}, "c2pa": {}}
    assert sorted(r.name for r in BUILTIN_READERS) == sorted(examples)
    for reader in BUILTIN_READERS:
        report = check_evidence_reader(reader, examples=examples[reader.name], speed=False)
        assert "stripped files claim nothing" in dict(report.checks) and report.name == reader.name
