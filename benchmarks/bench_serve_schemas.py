"""What validating answers through the response models would cost `attrib serve`, per identify request.

    python benchmarks/bench_serve_schemas.py [--requests 200] [--images 1] [--size 128] [--top-k 3] [--repeats 3]

Builds a small gallery (3 generators x 10 images of --size px, the `residual` extractor) in a temporary
folder and sends --requests identify requests (each of --images PNGs of --size px) through FastAPI's test
client to two apps on it: the app as built (the models only document the answers: ``responses=``), and
the same app whose routes validate and serialize every 200 answer through their model (``response_model=``,
unset fields left out). Prints the time per request of each (best of --repeats, runs interleaved), the
difference, and the validation + serialization alone (pydantic, no HTTP); the answers of both apps are
checked to be the same JSON. Built-in plugins only (ATTRIB_LOAD_PLUGINS="").
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_batch import three_generator_gallery, write_images  # noqa: E402


def validating(app):
    """``app`` with each route that documents a 200 model rebuilt to validate its answers through it."""
    from fastapi.routing import APIRoute

    for position, route in enumerate(app.router.routes):
        if isinstance(route, APIRoute) and 200 in route.responses:
            app.router.routes[position] = APIRoute(
                route.path, route.endpoint, methods=route.methods, responses=route.responses,
                response_model=route.responses[200]["model"], response_model_exclude_unset=True)
    return app


def per_request(client, files, top_k: int, requests: int) -> tuple[float, dict]:
    start = time.perf_counter()
    for _ in range(requests):
        answer = client.post("/v1/identify", files=files, data={"top_k": str(top_k)})
    assert answer.status_code == 200, answer.text
    return (time.perf_counter() - start) / requests, answer.json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--images", type=int, default=1, help="images per request")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ["ATTRIB_LOAD_PLUGINS"] = ""

    from fastapi.testclient import TestClient
    from pydantic import TypeAdapter

    from attrib.serve import ServeSettings, create_app
    from attrib.serve.schemas import Identified

    with tempfile.TemporaryDirectory(prefix="attrib-bench-serve-schemas-") as tmp:
        root = Path(tmp)
        gallery_dir = three_generator_gallery(root, "residual", args.size)
        images = [p for p in write_images(root / "query", 2 * args.images, args.size, seed=1) if p.suffix == ".png"]
        files = [("files", (p.name, p.read_bytes(), "image/png")) for p in images]
        settings = ServeSettings(extractor="residual")
        plain, checked = create_app(gallery_dir, settings), validating(create_app(gallery_dir, settings))
        best = {"responses=": float("inf"), "response_model=": float("inf")}
        answers = {}
        with TestClient(plain) as documented, TestClient(checked) as validated:
            for client in (documented, validated):  # warm both
                per_request(client, files, args.top_k, 5)
            for _ in range(args.repeats):
                for name, client in (("responses=", documented), ("response_model=", validated)):
                    seconds, answers[name] = per_request(client, files, args.top_k, args.requests)
                    best[name] = min(best[name], seconds)
        assert answers["responses="] == answers["response_model="], "response_model= changed the JSON"

        body, adapter = answers["responses="], TypeAdapter(Identified)
        start = time.perf_counter()
        for _ in range(args.requests):
            adapter.dump_python(adapter.validate_python(body), mode="json", by_alias=True, exclude_unset=True)
        alone = (time.perf_counter() - start) / args.requests

        print(f"{args.requests} identify requests of {len(images)} {args.size} px PNG(s), top-k {args.top_k}, "
              f"TestClient, best of {args.repeats}:")
        for name, seconds in best.items():
            print(f"  {name:16s} {seconds * 1000:8.3f} ms/request")
        print(f"  difference       {(best['response_model='] - best['responses=']) * 1000:8.3f} ms/request")
        print(f"  pydantic validate + serialize alone: {alone * 1000:.3f} ms/answer")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
