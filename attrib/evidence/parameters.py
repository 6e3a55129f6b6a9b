"""Generation parameters that image tools write beside the pixels: AUTOMATIC1111 / Forge /
Fooocus / SD.Next ``parameters`` (PNG text, or EXIF UserComment in JPEG and WebP), ComfyUI's
``prompt`` and ``workflow`` graphs (PNG text, or EXIF ``prompt:`` / ``workflow:`` fields in
WebP), NovelAI's ``Software`` / ``Source`` / ``Comment`` and InvokeAI's ``invokeai_metadata`` /
``sd-metadata``. Texts over ``MAX_PARSE_CHARS`` are reported, not parsed."""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from ..errors import EvidenceError
from .item import Evidence
from .metadata import exif_text, info_text
from .names import GeneratorNames, NameRule, model_file_name
from .source import EvidenceSource

KIND = "generation-parameters"
MAX_PARSE_CHARS = 2_000_000
MAX_SETTINGS_LINE = 50_000
MAX_NODES = 10_000
# AutoV2 hashes (first 10 hex digits of the file's SHA-256) of the reference checkpoints
MODEL_HASHES = {"31e35c80fc": "sd_xl_base_1.0", "6ce0161689": "v1-5-pruned-emaonly",
                "cc6cb27103": "v1-5-pruned-emaonly"}
_SETTING = re.compile(r'([A-Za-z][\w \-/]{0,40}):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_COMFY_FIELDS = ("prompt", "workflow")
_COMFY_MODEL_INPUTS = ("ckpt_name", "unet_name")


def _json(text: str, field: str, hint: str) -> Any:
    _check_size(text, field)
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise EvidenceError(f"'{field}' is not valid JSON ({hint})") from None


def _check_size(text: str, field: str) -> None:
    if len(text) > MAX_PARSE_CHARS:
        raise EvidenceError(f"'{field}' is {len(text):,} characters, over the {MAX_PARSE_CHARS:,}-character "
                            "limit; not parsed")


def a1111_settings(text: str) -> dict[str, str] | None:
    """The ``Key: value, ...`` settings line of A1111-style parameters, or None if there is none."""
    for line in reversed(text.strip().splitlines()[-20:]):
        if line.startswith("Steps: "):
            pairs = _SETTING.findall(line[:MAX_SETTINGS_LINE])
            return {key.strip(): value.strip().strip('"') for key, value in pairs}
    return None


def is_generation_parameters(text: str) -> bool:
    """Whether an EXIF text holds generation parameters (A1111 settings, a ComfyUI graph)."""
    return text.startswith(("prompt:", "workflow:")) or a1111_settings(text[-MAX_SETTINGS_LINE:]) is not None


def _a1111_tool(settings: dict[str, str]) -> str:
    version = settings.get("Version", "")
    if settings.get("App"):
        return settings["App"]
    if version.startswith("f") and version[1:2].isdigit():
        return "Forge"
    if "fooocus" in version.lower():
        return "Fooocus"
    return "AUTOMATIC1111"


def _named(names: GeneratorNames, model: str | None, model_hash: str | None = None) -> NameRule | None:
    rule = names.match(model, KIND)
    if rule is None and model_hash:
        rule = names.match(MODEL_HASHES.get(model_hash.lower()[:10]), KIND)
    return rule


def _item(names: GeneratorNames, text: str, field: str, tool: str, models: list[str],
          model_hash: str | None = None, **detail: Any) -> Evidence:
    """The item for parameters naming ``models``: the generator of the first the rules know, else the
    first model's file name (:func:`attrib.evidence.names.model_file_name`, ``known`` False)."""
    tried: list[str | None] = [*models] or [None]
    rule = next(filter(None, (_named(names, m, model_hash) for m in tried)), None)
    generator: str | None
    label: str | None
    known: bool | None
    if rule is not None:
        generator, label, known = rule.generator, rule.label, True
    else:
        named = next(filter(None, map(model_file_name, models)), None)
        generator, label = named or (None, None)
        known = False if named else None
    return Evidence(kind=KIND, claim=text, generator=generator, label=label, ai_generated=True, known=known,
                    detail={"field": field, "tool": tool, "models": models, **detail})


def read_a1111(texts: dict[str, str], source: EvidenceSource) -> Evidence | None:
    text = texts.get("parameters")
    if text is None or text.lstrip().startswith("{"):
        return None
    _check_size(text, "parameters")
    settings = a1111_settings(text)
    if settings is None:
        return Evidence(kind=KIND, claim=text, detail={"field": "parameters", "tool": None})
    model = settings.get("Model")
    return _item(source.names, text, "parameters", _a1111_tool(settings), [model] if model else [],
                 model_hash=settings.get("Model hash"), sampler=settings.get("Sampler"),
                 seed=settings.get("Seed"), steps=settings.get("Steps"), version=settings.get("Version"))


def read_fooocus(texts: dict[str, str], source: EvidenceSource) -> Evidence | None:
    text = texts.get("parameters")
    if text is None or not text.lstrip().startswith("{"):
        return None
    params = _json(text, "parameters", "Fooocus writes a JSON object there")
    if not isinstance(params, dict):
        raise EvidenceError("'parameters' is JSON but not an object")
    lowered = {str(k).lower().replace(" ", "_"): v for k, v in params.items()}
    models = [v for v in (lowered.get("base_model"), lowered.get("refiner_model")) if isinstance(v, str) and v]
    is_fooocus = "fooocus_scheme" in texts or "fooocus" in str(lowered.get("version", "")).lower()
    tool = "Fooocus" if is_fooocus else "unknown (JSON parameters)"
    return _item(source.names, text, "parameters", tool, models, model_hash=str(lowered.get("base_model_hash") or ""),
                 seed=lowered.get("seed"), sampler=lowered.get("sampler"), version=lowered.get("version"))


def comfyui_models(prompt: Any, workflow: Any) -> list[str]:
    """Checkpoint and UNet file names in a ComfyUI API graph (``prompt``) or UI graph (``workflow``)."""
    models: list[str] = []
    nodes = list(prompt.values())[:MAX_NODES] if isinstance(prompt, dict) else []
    for node in nodes:
        inputs = node.get("inputs") if isinstance(node, dict) else None
        if isinstance(inputs, dict):
            models += [inputs[k] for k in _COMFY_MODEL_INPUTS if isinstance(inputs.get(k), str)]
    ui_nodes = workflow.get("nodes") if isinstance(workflow, dict) else None
    for node in (ui_nodes[:MAX_NODES] if isinstance(ui_nodes, list) and not models else []):
        kind = str(node.get("type", "")) if isinstance(node, dict) else ""
        values = node.get("widgets_values") if re.search("checkpoint|unet", kind, re.I) else None
        if isinstance(values, list) and values and isinstance(values[0], str):
            models.append(values[0])
    return list(dict.fromkeys(models))


def read_comfyui(texts: dict[str, str], source: EvidenceSource) -> Evidence | None:
    fields = [f for f in _COMFY_FIELDS if f in texts]
    if not fields:
        return None
    graphs = {f: _json(texts[f], f, "ComfyUI writes its graph there") for f in fields}
    models = comfyui_models(graphs.get("prompt"), graphs.get("workflow"))
    return _item(source.names, texts[fields[0]], "+".join(fields), "ComfyUI", models)


def read_novelai(texts: dict[str, str], source: EvidenceSource) -> Evidence | None:
    if texts.get("Software", "").strip() != "NovelAI":
        return None
    model_source = texts.get("Source", "")
    comment = _json(texts["Comment"], "Comment", "NovelAI writes a JSON object there") if "Comment" in texts else {}
    comment = comment if isinstance(comment, dict) else {}
    rule = source.names.match(f"NovelAI {model_source}", KIND)
    return Evidence(kind=KIND, claim=texts.get("Description") or model_source or "NovelAI",
                    generator=rule.generator if rule else None, label=rule.label if rule else None, ai_generated=True,
                    detail={"field": "Software+Source+Comment", "tool": "NovelAI", "source": model_source,
                            "sampler": comment.get("sampler"), "seed": comment.get("seed"), "steps": comment.get("steps")})


def read_invokeai(texts: dict[str, str], source: EvidenceSource) -> Evidence | None:
    field = next((f for f in ("invokeai_metadata", "sd-metadata") if f in texts), None)
    if field is None:
        return None
    meta = _json(texts[field], field, "InvokeAI writes a JSON object there")
    meta = meta if isinstance(meta, dict) else {}
    model = meta.get("model")
    if isinstance(model, dict):
        base, model = model.get("base") or model.get("base_model"), model.get("name") or model.get("model_name")
    else:
        base, model = None, meta.get("model_weights") or model
    models = [model] if isinstance(model, str) and model else []
    return _item(source.names, texts[field], field, "InvokeAI", models, base=base, seed=meta.get("seed"))


RECOGNISERS: tuple[Callable[[dict[str, str], EvidenceSource], Evidence | None], ...] = (
    read_a1111, read_fooocus, read_comfyui, read_novelai, read_invokeai)


def parameter_texts(source: EvidenceSource) -> dict[str, str]:
    """Texts that may hold generation parameters: the image's text entries, then EXIF
    UserComment (A1111 in JPEG/WebP) and EXIF ``prompt:`` / ``workflow:`` fields (ComfyUI WebP)."""
    texts = info_text(source.image)
    for name, text in exif_text(source.image, source.data).items():
        if text.startswith(("prompt:", "workflow:")):
            field, _, body = text.partition(":")
            texts.setdefault(field, body)
        elif name == "UserComment" and a1111_settings(text[-MAX_SETTINGS_LINE:]) is not None:
            texts.setdefault("parameters", text)
    return texts


class GenerationParametersReader:
    """Generation parameters written by AUTOMATIC1111/Forge/Fooocus, ComfyUI, NovelAI and InvokeAI."""

    name = "generation-parameters"

    def read(self, source: EvidenceSource) -> list[Evidence]:
        texts = parameter_texts(source)
        found = []
        for recognise in RECOGNISERS:
            try:
                item = recognise(texts, source)
            except EvidenceError as exc:  # one unreadable field must not hide the others
                item = Evidence.failure(KIND, str(exc))
            if item is not None:
                found.append(item)
        return found
