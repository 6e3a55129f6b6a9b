"""The package layout: the import contract in pyproject.toml ([tool.importlinter]) holds, an upward import
breaks it, and what import-linter does not check: no import cycle between the modules of any part, nothing
imports the CLI, training stays apart from run time, and package docstrings state the contract's rule
for their part or say nothing about imports."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import attrib

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

PACKAGE = Path(attrib.__file__).parent
ROOT = PACKAGE.parent
CONTRACTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
RUN_TIME_EXCEPT = {"training", "evaluation", "discovery"}  # the parts that may use scikit-learn


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    """Every import of every attrib module (function-level imports included), and of external packages."""
    return grimp.build_graph("attrib", include_external_packages=True, cache_dir=None)


def part_of(module: str) -> str:
    """``attrib.storage.sqlite`` -> ``storage``; ``attrib.gallery`` -> ``gallery``; ``attrib`` -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def attrib_modules(graph: grimp.ImportGraph) -> set[str]:
    return {m for m in graph.modules if m == "attrib" or m.startswith("attrib.")}


def lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    """import-linter run on the ``attrib`` package found in ``package_parent``, with this checkout's contract."""
    code = ("import sys; from importlinter.cli import lint_imports; "
            "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))")
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([sys.executable, "-c", code, str(ROOT / "pyproject.toml")], cwd=package_parent, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_import_contract_holds():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    shutil.copytree(PACKAGE, tmp_path / "attrib", ignore=shutil.ignore_patterns("__pycache__"))
    with open(tmp_path / "attrib" / "index" / "files.py", "a") as module:
        module.write("\n\ndef _upward():\n    from ..upkeep import freshness\n\n    return freshness\n")
    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "attrib.index is not allowed to import attrib.upkeep" in done.stdout
    assert "attrib.index.files -> attrib.upkeep.freshness" in done.stdout


def cycles(nodes: set[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_the_modules_of_a_part(graph):
    modules = attrib_modules(graph) - {"attrib"}
    edges = {m: {t for t in graph.find_modules_directly_imported_by(m) if t in modules and part_of(t) == part_of(m)}
             for m in modules}
    assert cycles(modules, edges) == []


def test_cycles_are_found():
    assert cycles({"a", "b", "c", "d"}, {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a", "b"}, {"a": {"b"}}) == []


def test_nothing_in_the_library_imports_the_cli(graph):
    cli = {m for m in attrib_modules(graph) if part_of(m) == "cli"}
    importers = set().union(*(graph.find_modules_that_directly_import(m) for m in cli))
    assert sorted(m for m in importers if part_of(m) != "cli") == []


def test_run_time_never_imports_training_or_scikit_learn(graph):
    training = {m for m in attrib_modules(graph) if part_of(m) == "training"}
    importers = set().union(*(graph.find_modules_that_directly_import(m) for m in training))
    assert sorted(m for m in importers if part_of(m) != "training") == []
    sklearn = graph.find_modules_that_directly_import("sklearn") if "sklearn" in graph.modules else set()
    assert sorted(m for m in sklearn if part_of(m) not in RUN_TIME_EXCEPT) == []


def allowed_imports() -> dict[str, set[str]]:
    """For every part the contract lists: the parts it may import (those in the layers below it, less what
    forbidden and independence contracts take away)."""
    layers = next(c for c in CONTRACTS if c["type"] == "layers")
    assert layers["containers"] == ["attrib"]
    rows = [[name.strip() for name in re.split(r"[|:]", row)] for row in layers["layers"]]
    allowed = {part: {below for lower in rows[i + 1:] for below in lower} for i, row in enumerate(rows) for part in row}
    for contract in CONTRACTS:
        if contract["type"] == "forbidden":
            sources, forbidden = contract["source_modules"], contract["forbidden_modules"]
        elif contract["type"] == "independence":
            sources = forbidden = contract["modules"]
        else:
            continue
        for source in sources:
            allowed.get(part_of(source), set()).difference_update(part_of(f) for f in forbidden)
    return allowed


def import_rule(doc: str) -> tuple[str | None, list[str]]:
    """A docstring's paragraph starting "May import" (None without one): the parts it may import, then
    optionally "Never" and parts it must not; and the docstring's other sentences that speak of importing."""
    rule, others = None, []
    for paragraph in re.split(r"\n\s*\n", doc):
        if all(line.startswith("    ") for line in paragraph.splitlines()):
            continue  # an example of use
        if paragraph.lstrip().startswith("May import"):
            assert rule is None, "two paragraphs state what the part may import"
            rule = paragraph
        else:
            others += [s for s in re.split(r"(?<=[.;:])\s+", paragraph) if re.search(r"\bimport", s, re.I)]
    return rule, others


def names_a_part(sentence: str, parts: set[str]) -> set[str]:
    words = {w.lower() for w in re.findall(r"[A-Za-z_]+", sentence)}
    return (words & parts) | set(re.findall(r"attrib\.(\w+)", sentence))


def test_package_docstrings_state_the_contract_or_nothing_about_imports():
    allowed = allowed_imports()
    assert set(allowed) == {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" and p.stem != "__init__"} | {
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}, "the contract lists every part"
    for init in sorted(PACKAGE.rglob("__init__.py")):
        if init.parent == PACKAGE:
            continue
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        part = init.parent.relative_to(PACKAGE).parts[0]
        assert doc.strip(), f"{init}: say what the part is"
        rule, others = import_rule(doc)
        for sentence in others:
            assert not names_a_part(sentence, set(allowed)), (
                f"{init}: {sentence!r} speaks of importing parts outside the paragraph that starts 'May import'")
        if rule is not None:
            assert init.parent.parent == PACKAGE, f"{init}: the rule is stated in the part's own package docstring"
            may, _, never = rule.partition("Never")
            named = names_a_part(may, set(allowed))
            assert named == allowed[part], f"{init}: 'May import' names {sorted(named)}, not {sorted(allowed[part])}"
            refused = names_a_part(never, set(allowed))
            assert not refused & (allowed[part] | {part}), f"{init}: 'Never' names parts it may import"


def test_the_module_map_matches_the_tree():
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    mapped = set(re.findall(r"^\| `(attrib/[^`]*)` \|", architecture, flags=re.M))
    assert mapped, "no module map in docs/architecture.md"
    for entry in mapped:
        assert (ROOT / entry).exists(), entry
    top = {f"attrib/{p.name}" + ("/" if p.is_dir() else "") for p in PACKAGE.iterdir()
           if not p.name.startswith("__pycache__") and (p.is_dir() or p.suffix == ".py")}
    assert top <= mapped, sorted(top - mapped)
