"""Measure attrib-clip embedding throughput with random weights (no download needed).

    python plugins/attrib-clip/bench.py                     # ViT-B-32 on cpu, 64 images of 256x256
    python plugins/attrib-clip/bench.py --device cuda --fp16 --n 512

Builds the architecture with random weights, saves them to a temporary
.safetensors file, loads that through ClipExtractor exactly as a user's file
would be loaded, and times embed_batch (preprocessing included).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def bench(model="ViT-B-32", device="cpu", n=64, batch_size=32, size=256, fp16=False, threads=None, repeats=3):
    import open_clip
    import torch
    from safetensors.torch import save_file

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from attrib_clip import ClipExtractor

    if threads:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "open_clip_model.safetensors"
        torch.manual_seed(0)
        state = open_clip.create_model(model).state_dict()
        save_file({k: v.contiguous() for k, v in state.items()}, str(weights))
        del state
        t0 = time.perf_counter()
        ext = ClipExtractor(model=model, weights=str(weights), device=device,
                            batch_size=str(batch_size), fp16=str(fp16).lower())
        load_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(n)]
    ext.embed_batch(images[:batch_size])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        ext.embed_batch(images)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return {
        "model": model, "device": device, "fp16": fp16, "dim": ext.dim, "images": n, "size": size,
        "batch_size": batch_size, "threads": torch.get_num_threads(), "load_s": round(load_s, 2),
        "images_per_s": round(n / best, 1),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=64, help="images per timed run")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=256, help="side of the square test images")
    parser.add_argument("--fp16", action="store_true", help="half precision (cuda only)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best is reported")
    args = parser.parse_args(argv)
    result = bench(args.model, args.device, args.n, args.batch_size, args.size, args.fp16, args.threads, args.repeats)
    print(" ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
