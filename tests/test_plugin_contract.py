"""The plugin contract: every hookspec documented, built-ins use the same hooks."""

from __future__ import annotations

import inspect
from pathlib import Path

from attrib.host import hookspecs
from attrib.host.manager import DEFAULT_PLUGINS, evidence_reader_specs, extractor_specs, load_plugins, pm

from conftest import register_plugin

DOCS = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"


def hookspec_names():
    return sorted(
        name
        for name, obj in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(obj, "attrib_spec")
    )


def test_there_are_hookspecs():
    assert {"register_extractors", "register_commands", "register_evidence"} <= set(hookspec_names())


def test_every_hookspec_is_documented_with_its_arguments():
    text = DOCS.read_text()
    for name in hookspec_names():
        assert f"### {name}" in text, f"hookspec {name} is not documented in docs/plugins.md"
        section = text.split(f"### {name}", 1)[1].split("\n### ", 1)[0]
        for arg in inspect.signature(getattr(hookspecs, name)).parameters:
            assert f"`{arg}`" in section, f"argument {arg} of {name} is not documented"


def test_builtins_register_through_the_same_hooks():
    load_plugins()
    hooks = {}
    for name in DEFAULT_PLUGINS:
        plugin = pm.get_plugin(name)
        assert plugin is not None
        hooks[name] = [c.name for c in pm.get_hookcallers(plugin)]
    assert "register_extractors" in hooks["attrib.extractors.residual"]
    assert "register_evidence" in hooks["attrib.evidence.builtin"]
    spec = extractor_specs()["residual"]
    assert spec.plugin == "attrib.extractors.residual" and spec.dim > 0
    assert evidence_reader_specs()["c2pa"].plugin == "attrib.evidence.builtin"


def test_a_registered_plugin_provides_extractors_until_unregistered():
    class Tmp:
        name, version, dim = "tmp-extractor", "1", 2

    module = register_plugin("tmp-plugin", Tmp)
    try:
        assert extractor_specs()["tmp-extractor"].plugin == "tmp-plugin"
    finally:
        pm.unregister(module)
    assert "tmp-extractor" not in extractor_specs()
