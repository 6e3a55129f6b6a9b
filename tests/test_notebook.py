"""notebooks/quickstart.ipynb runs against the current library API and says what it should."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_code_runs_and_rejects_the_unenrolled_generator(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the notebook's mkdtemp lands here
    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    assert cells, "the notebook has no code"
    namespace: dict = {}
    try:
        for cell in cells:
            exec(compile("".join(cell["source"]), f"{NOTEBOOK.name} cell", "exec"), namespace)
    finally:
        if "gallery" in namespace:
            namespace["gallery"].close()
    lines = capsys.readouterr().out.splitlines()
    decisions = [line.split()[:2] for line in lines if line.endswith("]")]  # identify's lines
    assert decisions, lines
    for name, decision in decisions:
        assert decision == ("unknown" if name.startswith("bicubic-1") else "tconv-1"), (name, decision)
    verdicts = {line.split()[0]: line.split()[1] for line in lines[-4:]}
    assert sorted(verdicts.values()) == ["False", "False", "True", "True"]
