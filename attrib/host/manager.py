"""The plugin manager: entry points of group ``attrib`` first, then the built-ins (``DEFAULT_PLUGINS``).

Hooks are only ever called through ``pm.hook``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import pluggy

from ..errors import UnknownExtractor
from . import hookspecs

DEFAULT_PLUGINS = ("attrib.extractors.residual", "attrib.evidence.builtin")


@dataclass(frozen=True)
class PluginSpec:
    """A class a plugin registered through a hook, and the plugin that provided it."""

    factory: Any
    plugin: str

    @property
    def name(self) -> str:
        return str(self.factory.name)

    @property
    def description(self) -> str:
        doc = getattr(self.factory, "description", None) or (self.factory.__doc__ or "")
        return doc.strip().splitlines()[0] if doc.strip() else ""


Spec = TypeVar("Spec", bound=PluginSpec)


@dataclass(frozen=True)
class ExtractorSpec(PluginSpec):
    """A registered extractor class and the plugin that provided it."""

    @property
    def version(self) -> str:
        return str(self.factory.version)

    @property
    def dim(self) -> int | None:
        return getattr(self.factory, "dim", None)

    @property
    def option_help(self) -> dict[str, str]:
        return dict(getattr(self.factory, "options_help", {}) or {})

    @property
    def identity_options(self) -> list[str] | None:
        """Options that change embeddings; None: all of them."""
        keys = getattr(self.factory, "identity_options", None)
        return None if keys is None else list(keys)


pm = pluggy.PluginManager("attrib")
pm.add_hookspecs(hookspecs)

_loaded = False
_dists: dict[str, importlib.metadata.Distribution | None] = {}


def _entry_points() -> list[tuple[importlib.metadata.EntryPoint, importlib.metadata.Distribution | None]]:
    """Entry points of group ``attrib``, limited to the ATTRIB_LOAD_PLUGINS distributions if set.

    Only the ``attrib`` group is looked up: the metadata of other installed distributions is never parsed.
    """
    allowed = os.environ.get("ATTRIB_LOAD_PLUGINS")
    wanted = None if allowed is None else {n.strip().lower().replace("_", "-") for n in allowed.split(",") if n.strip()}
    found = []
    for ep in importlib.metadata.entry_points(group="attrib"):
        dist = ep.dist
        if wanted is not None and (dist is None or (dist.name or "").lower().replace("_", "-") not in wanted):
            continue
        found.append((ep, dist))
    return found


def load_plugins() -> pluggy.PluginManager:
    """Load third-party plugins (filtered by ATTRIB_LOAD_PLUGINS), then the defaults, once.

    Under pytest (``sys._called_from_test``) installed plugins are not autoloaded.
    A plugin that fails to import is reported on stderr and skipped.
    """
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    if not hasattr(sys, "_called_from_test"):
        for ep, dist in _entry_points():
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue
            try:
                module = ep.load()
                pm.register(module, name=ep.name)
            except Exception as exc:  # a broken plugin must not take the CLI down
                source = getattr(dist, "name", None) or "unknown distribution"
                print(f"attrib: plugin {ep.name!r} ({source}) failed to load and was skipped: {exc}", file=sys.stderr)
                continue
            _dists[ep.name] = dist
    for name in DEFAULT_PLUGINS:
        if pm.get_plugin(name) is None:
            pm.register(importlib.import_module(name), name=name)
    return pm


@dataclass(frozen=True)
class EvidenceReaderSpec(PluginSpec):
    """A registered evidence reader class and the plugin that provided it."""


@dataclass
class PluginInfo:
    name: str
    version: str | None
    package: str | None
    hooks: list[str]
    extractors: list[ExtractorSpec]
    evidence_readers: list[EvidenceReaderSpec]


def extractor_specs() -> dict[str, ExtractorSpec]:
    """All registered extractors by name; when two plugins register one name, the first registered wins."""
    return _registered("register_extractors", lambda factory, plugin: ExtractorSpec(factory, plugin))


def _registered(hook_name: str, make_spec: Callable[[Any, str], Spec]) -> dict[str, Spec]:
    """Call one ``register_*`` hook plugin by plugin, in registration order; the first
    registration of a name wins."""
    load_plugins()
    specs: dict[str, Spec] = {}
    for impl in getattr(pm.hook, hook_name).get_hookimpls():

        def register(factory: Any, _plugin: str = impl.plugin_name) -> None:
            spec = make_spec(factory, _plugin)
            specs.setdefault(spec.name, spec)

        impl.function(register=register)
    return specs


def evidence_reader_specs() -> dict[str, EvidenceReaderSpec]:
    """All registered evidence readers by name: the built-ins first, in the order they register."""
    specs = _registered("register_evidence", lambda factory, plugin: EvidenceReaderSpec(factory, plugin))
    builtin = [name for name, spec in specs.items() if spec.plugin in DEFAULT_PLUGINS]
    return {name: specs[name] for name in builtin + sorted(set(specs) - set(builtin))}


def get_extractor_spec(name: str) -> ExtractorSpec:
    specs = extractor_specs()
    if name not in specs:
        known = ", ".join(sorted(specs)) or "none"
        raise UnknownExtractor(
            f"no installed plugin provides extractor {name!r} (installed: {known}); "
            "install the plugin that provides it or check `attrib plugins`"
        )
    return specs[name]


def plugin_infos() -> list[PluginInfo]:
    """Describe every loaded plugin for ``attrib plugins``."""
    load_plugins()
    by_plugin: dict[str, list[ExtractorSpec]] = {}
    for spec in extractor_specs().values():
        by_plugin.setdefault(spec.plugin, []).append(spec)
    readers: dict[str, list[EvidenceReaderSpec]] = {}
    for reader in evidence_reader_specs().values():
        readers.setdefault(reader.plugin, []).append(reader)
    infos = []
    for plugin in pm.get_plugins():
        name = pm.get_name(plugin) or repr(plugin)
        dist = _dists.get(name)
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        if dist is not None:
            version, package = dist.version, dist.metadata["Name"]
        elif name.startswith("attrib."):
            from ..version import __version__

            version, package = __version__, "attrib"
        else:
            version, package = None, None
        infos.append(PluginInfo(name, version, package, hooks, by_plugin.get(name, []), readers.get(name, [])))
    return sorted(infos, key=lambda info: info.name)
