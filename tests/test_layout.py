"""The package layout: one direction of imports, no cycles between parts, training apart from run time."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import attrib

PACKAGE = Path(attrib.__file__).parent
ROOT = PACKAGE.parent


def part_of(module: str) -> str:
    """``attrib.storage.sqlite`` -> ``storage``; ``attrib.gallery`` -> ``gallery``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        found[name] = path
    return found


def imports_of(module: str, path: Path) -> set[str]:
    """Every attrib module ``module`` imports at run time (function-level imports included,
    ``if TYPE_CHECKING:`` blocks left out)."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
            and getattr(node.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("attrib")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("attrib"):
                found.add(target)
                found |= {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules()}
    return found


def part_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in modules().items():
        if module == "attrib":
            continue  # the public API re-exports lazily, by name
        src = part_of(module)
        for target in imports_of(module, path):
            dst = part_of(target)
            if dst != src and target != "attrib":
                graph.setdefault(src, set()).add(dst)
    return graph


def test_nothing_in_the_library_imports_the_cli():
    offenders = [m for m, p in modules().items() if part_of(m) != "cli"
                 and any(part_of(t) == "cli" for t in imports_of(m, p))]
    assert offenders == []


def test_no_import_cycles_between_parts():
    graph = part_graph()

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    cycles = sorted(part for part in graph if part in reachable(part))
    assert cycles == [], {p: sorted(graph[p]) for p in cycles}
    # and the intended direction holds: storage reads scoring's types, never the reverse
    assert "storage" not in reachable("scoring") and "extractors" not in reachable("host")


def test_run_time_never_imports_training_or_scikit_learn():
    for module, path in modules().items():
        if part_of(module) in ("training", "evaluation"):
            continue
        text = path.read_text()
        assert "sklearn" not in text, module
        assert not any(part_of(t) == "training" for t in imports_of(module, path)), module


def test_every_subpackage_says_what_it_owns_and_may_import():
    for init in PACKAGE.glob("*/__init__.py"):
        if init.parent.name == "residual":
            continue
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(doc) > 80 and ("import" in doc or "imports" in doc), init


def test_the_module_map_matches_the_tree():
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    mapped = set(re.findall(r"^\| `(attrib/[^`]*)` \|", architecture, flags=re.M))
    assert mapped, "no module map in docs/architecture.md"
    for entry in mapped:
        assert (ROOT / entry).exists(), entry
    top = {f"attrib/{p.name}" + ("/" if p.is_dir() else "") for p in PACKAGE.iterdir()
           if not p.name.startswith("__pycache__") and (p.is_dir() or p.suffix == ".py")}
    assert top <= mapped, sorted(top - mapped)
