"""Every ``attrib`` command of the README, run as written and in order, by the installed console script,
in a folder holding what the commands name (``samples/``, ``image.png``, ``images/``, ``list.txt``, a
``DATA_DIR``, OpenCLIP weights with random values in ``ViT-B-32.safetensors``).

How a line becomes commands (:func:`expand`): a trailing ``# comment`` is dropped; ``a | b NAME | c
NAME [--json]`` is one command per alternative, each with the shared head (``attrib gallery``) and the
shared optional tail; an optional ``[...]`` is kept unless it holds a placeholder (a word in capitals,
such as ``FILE``), which the reader would have to fill in; the other placeholders (``NAME``, ``OLD``,
``DATA_DIR``...) are filled in with what the folder and the gallery hold (:data:`FILL`). The gallery is ``$ATTRIB_GALLERY`` in the folder, galleries hold no delivery
versions (``ATTRIB_DELIVERY_LADDER=none``: each version embeds the impostor cohort again, minutes with
CLIP on a CPU), and ``$HOME`` is the folder, so nothing outside it is touched. ``attrib serve`` runs
until it answers ``/v1/health`` on its port (another free port when 8000 is taken here).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"
# what the README's placeholders are filled with: `gallery rename OLD NEW` renames the generator enrolled first,
# which `gallery show NAME` and `remove NAME` then name; `remove-sample SHA256|PATH` takes out one sdxl sample
FILL = {"OLD": "midjourney7", "NEW": "mj-7", "NAME": "mj-7", "SHA256|PATH": "sdxl-samples/tconv-5-0.png",
        "DATA_DIR": "data"}
PLACEHOLDER = re.compile(r"\b[A-Z][A-Z_]{2,}\b")


def readme_lines(text: str) -> list[str]:
    """The lines of the README's code blocks that run ``attrib``, in order."""
    lines, inside = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            inside = not inside
            continue
        if inside and line.startswith("attrib "):
            lines.append(line)
    return lines


def _optional(words: str) -> str:
    """``words`` with each ``[...]`` kept (brackets dropped) unless it holds a placeholder."""
    return re.sub(r"\[([^\]]*)\]", lambda m: "" if PLACEHOLDER.search(m.group(1)) else m.group(1), words)


def expand(line: str, fill: dict[str, str]) -> list[list[str]]:
    """The commands one README line stands for (see the module docstring), as argument lists."""
    line = line.split("  #")[0].strip()
    parts = [part.strip() for part in line.split(" | ")]
    if len(parts) > 1:
        head = parts[0].split()[:2]
        tail = re.findall(r"\[[^\]]*\]", parts[-1])
        parts[-1] = re.sub(r"\s*\[[^\]]*\]", "", parts[-1])
        parts = [parts[0]] + [" ".join(head + [part]) for part in parts[1:]]
        parts = [" ".join([part] + tail) for part in parts]
    commands = []
    for part in parts:
        words = shlex.split(_optional(part))
        commands.append([fill.get(word, word) for word in words])
    return commands


def test_expand_reads_alternatives_optional_parts_and_placeholders():
    fill = {"NAME": "x", "FILE": "never"}
    assert expand("attrib gallery list | show NAME | remove NAME [--json]", fill) == [
        ["attrib", "gallery", "list", "--json"], ["attrib", "gallery", "show", "x", "--json"],
        ["attrib", "gallery", "remove", "x", "--json"]]
    assert expand("attrib inspect [--json] [--c2pa-trust FILE] images/   # what", fill) == [
        ["attrib", "inspect", "--json", "images/"]]
    assert expand("attrib identify image.png                 # -> a / b", fill) == [["attrib", "identify", "image.png"]]
    assert readme_lines("x\n```bash\nattrib a\nmake b\n```\nattrib c\n") == ["attrib a"]


def _zoo_images(folder: Path, generator: str, n: int, start: int, fmt: str = "png") -> None:
    from attrib.synthetic.zoo import render

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(render(generator, start + i, 128)).save(folder / f"{generator}-{start + i}.{fmt}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _clip_weights(path: Path) -> None:
    """OpenCLIP ViT-B-32 with random weights, saved as the README's ``ViT-B-32.safetensors``."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = open_clip.create_model("ViT-B-32", pretrained=None)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))


def _serve(argv: list[str], env: dict[str, str], cwd: Path) -> None:
    port = int(argv[argv.index("--port") + 1])
    if _port_taken(port):
        port = _free_port()
        argv = argv[:argv.index("--port") + 1] + [str(port)] + argv[argv.index("--port") + 2:]
    server = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health", timeout=2) as answer:
                    assert answer.status == 200
                    return
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"{' '.join(argv)} did not answer: {server.communicate()[0]}")
                time.sleep(0.3)
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.skipif(shutil.which("attrib", path=str(Path(sys.executable).parent)) is None,
                    reason="the attrib console script is not installed beside this Python (`make test` installs it)")
def test_every_readme_command_runs_as_written_in_order(tmp_path):
    pytest.importorskip("open_clip")
    pytest.importorskip("fastapi")
    work = tmp_path
    _zoo_images(work / "samples", "bicubic-3", 8, 0)
    _zoo_images(work / "sdxl-samples", "tconv-5", 8, 0)
    Image.open(next((work / "samples").iterdir())).save(work / "image.png")
    _zoo_images(work / "images", "bicubic-3", 2, 100)
    _zoo_images(work / "images", "nearest-7", 2, 100, fmt="jpg")
    (work / "list.txt").write_text("".join(f"{p}\n" for p in sorted((work / "images").iterdir())))
    for label, generator in (("a", "bicubic-3"), ("b", "tconv-5"), ("c", "nearest-7"), ("d", "shuffle-2")):
        _zoo_images(work / "data" / label, generator, 14, 200)
    _clip_weights(work / "ViT-B-32.safetensors")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "HOME": str(work), "XDG_DATA_HOME": str(work / ".local"), "ATTRIB_GALLERY": str(work / "g"),
           "ATTRIB_DELIVERY_LADDER": "none", "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("ATTRIB_CLIP_WEIGHTS", None)
    # set-up the README takes for granted: a gallery that already knows `sdxl` (its verify command)
    subprocess.run([str(bin_dir / "attrib"), "enroll", "--generator", "sdxl", "sdxl-samples/"], cwd=work, env=env,
                   check=True, capture_output=True, text=True)
    ran = []
    for line in readme_lines(README.read_text()):
        for argv in expand(line, FILL):
            argv = [str(bin_dir / "attrib")] + argv[1:]
            if argv[1] == "serve":
                _serve(argv, env, work)
            else:
                done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=900)
                assert done.returncode == 0, f"`{' '.join(['attrib'] + argv[1:])}` exited {done.returncode}:\n" \
                                             f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            ran.append(" ".join(["attrib"] + argv[1:]))
    assert any(command.startswith("attrib enroll --generator midjourney7") for command in ran)
    assert "attrib gallery rename midjourney7 mj-7" in ran and "attrib gallery remove mj-7 --json" in ran
    assert len(ran) >= 20, ran
    # what the commands were asked to write is there
    assert (work / "out.jsonl").stat().st_size > 0 and (work / "report.html").stat().st_size > 0
    assert (work / "reports").is_dir() and (work / "eval" / "index.html").exists()
    assert all('"schema"' in line for line in (work / "out.jsonl").read_text().splitlines())
