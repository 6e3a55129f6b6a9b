"""Identification over Ray with Ray Data: each actor opens the gallery and the extractor once, then
decodes, embeds and searches the batches of paths it is given; the driver writes the records
exactly as a single-process run does (same records, same order: the input order).

The paths are handed to Ray Data in windows of :data:`WINDOW`, so that a list of millions is never
held at once; each window starts its own actors (a few seconds, against minutes of work per window
on a cluster). Every node must see the paths and the gallery at the same locations: absolute paths
on a shared folder (relative ones are taken from the driver's working folder, which then must exist
on every node), and a gallery folder on shared storage or a database URL. Environment variables
``ATTRIB_*`` of the driver (e.g. ATTRIB_LOAD_PLUGINS, ATTRIB_C2PA_TRUST) are set on the workers;
each actor decodes on its own thread (ATTRIB_WORKERS=1) unless ATTRIB_WORKERS says otherwise.

Ray is imported only here, and only when a run asks for it.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Iterable, Iterator

from ..errors import AttribError
from .records import Record, result_record

WINDOW = 8192  # paths per Ray Data dataset
BATCH = 16  # paths per actor call (as attrib.images.BATCH)
LOCAL = "local"
_ADDRESS = re.compile(r"^(auto|local|(ray://)?[\w.-]+:\d+)$")


class RayUnavailable(AttribError):
    """Ray is not installed, or no cluster answers at the address given."""


def check_address(address: str) -> str:
    """``local`` (start Ray here), ``auto`` (the cluster this machine joined) or ``[ray://]HOST:PORT``."""
    if not _ADDRESS.match(address):
        raise RayUnavailable(f"--ray {address}: not a Ray address (local, auto, HOST:PORT or ray://HOST:PORT); "
                             "if it is a path, give --ray last or write --ray local")
    return address


def import_ray() -> ModuleType:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise RayUnavailable("--ray needs Ray: pip install 'attrib[ray]'") from None
    return ray


@dataclass(frozen=True)
class IdentifyJob:
    """What every actor needs to answer like ``attrib identify`` would on the driver."""

    gallery: str
    extractor: str | None = None
    options: tuple[str, ...] = ()
    top_k: int = 3
    c2pa_trust: str | None = None
    trust_metadata: bool = False
    cwd: str = ""

    @classmethod
    def on_driver(cls, gallery: str | os.PathLike[str], **kwargs: Any) -> "IdentifyJob":
        """Folders (the gallery, the trust list) made absolute, and the driver's working folder kept."""
        location = str(gallery)
        if "://" not in location:
            location = os.path.abspath(location)
        trust = kwargs.pop("c2pa_trust", None)
        return cls(gallery=location, c2pa_trust=os.path.abspath(trust) if trust else None, cwd=os.getcwd(),
                   **kwargs)


class Identifier:
    """The Ray Data callable class: one gallery and extractor per actor; a batch of encoded paths
    in, their records (JSON text) out."""

    def __init__(self, job: IdentifyJob) -> None:
        from ..gallery import open_gallery

        if job.cwd and os.path.isdir(job.cwd):
            os.chdir(job.cwd)
        self.job = job
        self.gallery = open_gallery(job.gallery, read_only=True)
        self.extractor = self.gallery.load_extractor(job.extractor, job.options)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        paths = [Path(os.fsdecode(bytes(p))) for p in batch["path"]]
        results = self.gallery.identify(paths, self.extractor, top_k=self.job.top_k, c2pa_trust=self.job.c2pa_trust,
                                        trust_metadata=self.job.trust_metadata)
        return {"record": [json.dumps(result_record(r), ensure_ascii=False) for r in results]}


def identify_on_ray(paths: Iterable[Path], job: IdentifyJob, address: str = LOCAL, window: int = WINDOW,
                    batch_size: int = BATCH) -> Iterator[Record]:
    """The identify record of each path, in input order, computed by actors on Ray.

    Uses the Ray this process already joined, else starts one here (``local``) or connects to
    ``address``; a Ray it started or joined is left again at the end."""
    ray = import_ray()
    joined = not ray.is_initialized()
    if joined:
        _join(ray, check_address(address))
    try:
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = context.print_on_execution_start = False
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # its INFO and notes stay in the session's log files
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        runtime_env = {"env_vars": {"ATTRIB_WORKERS": "1", **{k: v for k, v in os.environ.items()
                                                             if k.startswith("ATTRIB_")}}}
        stream = iter(paths)
        while chunk := list(itertools.islice(stream, window)):
            dataset = ray.data.from_items([{"path": os.fsencode(p)} for p in chunk]).map_batches(
                Identifier, fn_constructor_kwargs={"job": job}, batch_size=batch_size, num_cpus=1,
                compute=ray.data.ActorPoolStrategy(min_size=1, max_size=min(cpus, -(-len(chunk) // batch_size))),
                runtime_env=runtime_env)
            try:
                for row in dataset.iter_rows():
                    yield json.loads(row["record"])
            except ray.exceptions.RayError as exc:
                raise RayUnavailable(f"Ray workers failed: {_last_line(exc)}") from None
    finally:
        if joined:
            ray.shutdown()


def _join(ray: ModuleType, address: str) -> None:
    logging.getLogger("ray").setLevel(logging.WARNING)
    try:
        ray.init(address=None if address == LOCAL else address, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayUnavailable(f"--ray {address}: {_last_line(exc)}") from None


def _last_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
