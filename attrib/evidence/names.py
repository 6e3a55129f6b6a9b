"""Claims to normalised generator names: the shipped rules (``generators.json``), a user's file
(``ATTRIB_GENERATOR_NAMES``) and plugins' rules, tried in that order: user, plugins, shipped."""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from ..errors import EvidenceError

NAMES_ENV = "ATTRIB_GENERATOR_NAMES"
MAX_MATCH_CHARS = 10_000  # a claim is matched on its first characters only, so that a file's time is bounded


@dataclass(frozen=True)
class NameRule:
    """Claims matching any of ``patterns`` name ``generator`` (shown as ``label``)."""

    generator: str
    label: str
    patterns: tuple[re.Pattern[str], ...]
    kinds: frozenset[str] | None = None

    def matches(self, text: str, kind: str | None) -> bool:
        if self.kinds is not None and kind not in self.kinds:
            return False
        return any(p.search(text) for p in self.patterns)


def _for_matching(text: str) -> str:
    return text[:MAX_MATCH_CHARS].lower().replace("_", "-")


_MODEL_FILE_TYPES = re.compile(r"\.(?:safetensors|sft|ckpt|pt|pth|bin|gguf)$", re.IGNORECASE)
# how a file is stored, not which model it is: precision, quantisation, pruning (at the end of the stem)
_STORAGE_SUFFIX = re.compile(r"(?:[-_. ]+(?:fp\d+|bf16|e4m3fn|e5m2|scaled|nf4|int[48]|q\d(?:_[0-9a-z]{1,2})*|pruned|"
                             r"ema(?:only)?))+$", re.IGNORECASE)
MAX_MODEL_NAME_CHARS = 80


def model_file_name(model: str) -> tuple[str, str] | None:
    """``(generator, label)`` made from a model file a tool names, for one outside the rules: the
    stem without folders and file type (the label), lowercased, without storage suffixes (fp16,
    bf16, fp8_e4m3fn, GGUF quantisations, pruned, ema), other characters ``-`` (the generator):
    ``SDXL/juggernautXL_v9_fp16.safetensors`` -> ``("juggernautxl-v9", "juggernautXL_v9_fp16")``.
    None when nothing that reads as a name is left."""
    stem = _MODEL_FILE_TYPES.sub("", re.split(r"[\\/]", str(model).strip())[-1]).strip()[:MAX_MODEL_NAME_CHARS]
    core = _STORAGE_SUFFIX.sub("", stem) or stem
    generator = re.sub(r"[^a-z0-9.]+", "-", core.lower()).strip("-.")
    return (generator, stem) if re.search("[a-z]", generator) else None


def name_key(name: str) -> str:
    """How two generator names are compared: ``GPT-4o``, ``gpt4o`` and ``gpt_4o`` are the same."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass(frozen=True)
class GeneratorNames:
    """The rules in force; :meth:`match` names the generator a claim names."""

    rules: tuple[NameRule, ...]
    ai_phrases: tuple[re.Pattern[str], ...]
    source_types: dict[str, bool | None]

    def match(self, text: str | None, kind: str | None = None) -> NameRule | None:
        """The first rule whose pattern is found in ``text`` (its first ``MAX_MATCH_CHARS``) for
        evidence of ``kind``, or None."""
        if not text:
            return None
        flat = _for_matching(text)
        return next((rule for rule in self.rules if rule.matches(flat, kind)), None)

    def says_ai(self, text: str | None) -> bool:
        """Whether ``text`` (its first ``MAX_MATCH_CHARS``) says in so many words that the image was
        made by AI."""
        flat = _for_matching(text or "")
        return any(p.search(flat) for p in self.ai_phrases)

    def source_type(self, value: str | None) -> tuple[str, bool | None] | None:
        """An IPTC digital source type (term or URL) -> (term, AI-generated or not, or None when
        the term does not say); None when ``value`` is not a known term."""
        if not value:
            return None
        term = str(value).strip().rstrip("/").rsplit("/", 1)[-1]
        for known, ai in self.source_types.items():
            if known.lower() == term.lower():
                return known, ai
        return None


def _compile(pattern: Any, where: str) -> re.Pattern[str]:
    if not isinstance(pattern, str):
        raise EvidenceError(f"{where}: pattern {pattern!r} is not a string")
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise EvidenceError(f"{where}: pattern {pattern!r} is not a valid regular expression ({exc})") from None


def parse_rules(rules: Iterable[Any], where: str) -> tuple[NameRule, ...]:
    """Rules from their JSON form: ``{"generator", "label"?, "patterns": [...], "kinds"?: [...]}``."""
    parsed = []
    for rule in rules:
        if not isinstance(rule, dict) or not isinstance(rule.get("generator"), str) or not rule["generator"]:
            raise EvidenceError(f"{where}: each rule needs a 'generator' name, got {rule!r}")
        patterns = rule.get("patterns")
        if not isinstance(patterns, list) or not patterns:
            raise EvidenceError(f"{where}: rule for {rule['generator']!r} needs a non-empty 'patterns' list")
        kinds = rule.get("kinds")
        parsed.append(NameRule(
            generator=rule["generator"],
            label=str(rule.get("label") or rule["generator"]),
            patterns=tuple(_compile(p, where) for p in patterns),
            kinds=None if kinds is None else frozenset(map(str, kinds)),
        ))
    return tuple(parsed)


def _read_json(text: str, where: str) -> dict[str, Any]:
    try:
        table = json.loads(text)
    except ValueError as exc:
        raise EvidenceError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(table, dict):
        raise EvidenceError(f"{where}: expected a JSON object with a 'generators' list")
    return table


@functools.lru_cache(maxsize=1)
def _shipped() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("generators.json").read_text(encoding="utf-8")
    return _read_json(text, "attrib/evidence/generators.json")


@functools.lru_cache(maxsize=8)
def _user_table(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvidenceError(f"{path} ({NAMES_ENV}): cannot be read ({exc})") from None
    return _read_json(text, f"{path} ({NAMES_ENV})")


@functools.lru_cache(maxsize=16)
def _build(user_file: str | None, plugin_rules: tuple[tuple[str, str], ...]) -> GeneratorNames:
    shipped = _shipped()
    tables = ([(_user_table(user_file), f"{user_file} ({NAMES_ENV})")] if user_file else [])
    rules: list[NameRule] = []
    for table, where in tables:
        rules += parse_rules(table.get("generators", []), where)
    for plugin, rules_json in plugin_rules:
        rules += parse_rules(json.loads(rules_json), f"plugin {plugin}")
    rules += parse_rules(shipped["generators"], "attrib/evidence/generators.json")
    phrases = [_compile(p, where) for table, where in tables for p in table.get("ai_phrases", [])]
    phrases += [_compile(p, "generators.json") for p in shipped["ai_phrases"]]
    source_types = dict(shipped["digital_source_types"])
    for table, _ in tables:
        source_types.update(table.get("digital_source_types", {}))
    return GeneratorNames(tuple(rules), tuple(phrases), source_types)


def generator_names(plugin_rules: Iterable[tuple[str, list[Any]]] = (), user_file: str | None = None) -> GeneratorNames:
    """The rules in force: ``user_file`` (default ``$ATTRIB_GENERATOR_NAMES``), then each
    ``(plugin, rules)`` pair, then the shipped table. Raises EvidenceError for a bad file or rule."""
    user_file = user_file if user_file is not None else os.environ.get(NAMES_ENV) or None
    frozen = tuple((plugin, json.dumps(rules, sort_keys=True)) for plugin, rules in plugin_rules)
    return _build(user_file, frozen)
