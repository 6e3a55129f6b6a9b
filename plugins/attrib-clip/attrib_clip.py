"""attrib-clip: OpenCLIP image-tower embeddings as an attrib extractor.

Weights are only ever read from a local file; nothing is downloaded. torch and
open_clip are imported when an extractor is built, never at module import, so
``attrib plugins`` can list this plugin without loading torch.

    attrib identify img.png --extractor clip \\
        --option weights=/models/ViT-B-32/open_clip_model.safetensors
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from attrib import hookimpl
from attrib.errors import ExtractorError
from attrib.extractors import options

__version__ = "0.1.0"

WEIGHTS_ENV = "ATTRIB_CLIP_WEIGHTS"
# File names looked for, in order, when ``weights`` is a folder (the names open_clip uses on model hubs).
FOLDER_FILES = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
)
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")
def _where_to_put(model: str) -> str:
    return (
        f"set --option weights=/path/to/open_clip_model.safetensors or {WEIGHTS_ENV}=/path/to/it; "
        f"expected a .safetensors file (or .pt/.bin state dict, or a folder holding "
        f"open_clip_model.safetensors or open_clip_pytorch_model.bin) with OpenCLIP weights for {model}"
    )


def resolve_weights(weights: str | None, model: str) -> Path:
    """The weights file to load, or ExtractorError saying exactly what to put where."""
    return options.resolve_weights("clip", weights, WEIGHTS_ENV, _where_to_put(model),
                                   folder_files=FOLDER_FILES, suffixes=WEIGHT_SUFFIXES)


class ClipExtractor:
    """OpenCLIP image embeddings (projected or pre-projection features) from local weights."""

    name = "clip"
    version = "1"
    dim = None  # depends on model and features; set on the instance
    options_help = {
        "model": "OpenCLIP architecture name (default ViT-B-32); see open_clip.list_models()",
        "weights": f"local weights: .safetensors (preferred), .pt/.bin, or a folder with "
        f"{FOLDER_FILES[0]} or {FOLDER_FILES[2]} (default: ${WEIGHTS_ENV}); never downloaded",
        "features": "projected (default: the CLIP embedding) or penultimate (pooled features before the projection)",
        "device": "cuda if available, else cpu",
        "batch_size": "images per forward pass (default 32)",
        "fp16": "true to run in half precision (cuda only; default false)",
        "config": "optional path to an OpenCLIP model config JSON (or a folder of them) for custom architectures",
    }
    identity_options = ("model", "weights", "features", "fp16")

    def __init__(
        self,
        model: str = "ViT-B-32",
        weights: str | None = None,
        features: str = "projected",
        device: str | None = None,
        batch_size: str | int = 32,
        fp16: str | bool = "false",
        config: str | None = None,
    ):
        self.model_name = str(model).strip()
        if ":" in self.model_name:  # hf-hub:/local-dir: schemas would fetch or bypass `weights`
            raise ExtractorError(
                f"extractor 'clip': model {self.model_name!r} must be a plain OpenCLIP architecture name "
                f"(e.g. ViT-B-32) with weights given by --option weights=..."
            )
        self.features = str(features).strip().lower()
        if self.features not in ("projected", "penultimate"):
            raise options.bad_option("clip", "features", features, "must be projected or penultimate")
        self.batch_size = options.parse_positive_int("clip", "batch_size", batch_size)
        self.fp16 = options.parse_flag("clip", "fp16", fp16)
        self.weights_path = resolve_weights(weights, self.model_name)

        try:
            import open_clip
            import torch
        except ImportError as exc:
            raise ExtractorError(
                f"extractor 'clip' needs torch and open_clip_torch: pip install attrib-clip ({exc})"
            ) from exc
        self._torch = torch

        self.device = str(device or ("cuda" if torch.cuda.is_available() else "cpu")).strip()
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ExtractorError(f"extractor 'clip': device={self.device} but torch sees no CUDA GPU; use device=cpu")
        if self.fp16 and not self.device.startswith("cuda"):
            raise ExtractorError("extractor 'clip': fp16=true needs a CUDA device (device=cuda); use fp16=false on cpu")

        if config:
            if not Path(config).exists():
                raise ExtractorError(f"extractor 'clip': model config {config} does not exist")
            open_clip.add_model_config(config)
        if self.model_name not in open_clip.list_models():
            vits = ", ".join(m for m in open_clip.list_models() if m.startswith("ViT-B"))
            raise ExtractorError(
                f"extractor 'clip': unknown OpenCLIP model {self.model_name!r} (e.g. {vits}); "
                "pass --option config=/path/to/<model>.json for a custom architecture"
            )

        try:
            full, _, preprocess = open_clip.create_model_and_transforms(
                self.model_name,
                pretrained=str(self.weights_path),
                device=self.device,
                precision="fp16" if self.fp16 else "fp32",
                weights_only=True,
                pretrained_text=False,
            )
        except Exception as exc:  # noqa: BLE001 - strict loading failures, corrupt files
            detail = str(exc).strip().splitlines()[0][:400] if str(exc).strip() else type(exc).__name__
            raise ExtractorError(
                f"extractor 'clip': could not load {self.weights_path} as OpenCLIP {self.model_name} weights "
                f"({detail}); check that --option model= matches the weights"
            ) from exc
        visual = full.visual  # only the image tower is kept
        del full
        visual.eval().requires_grad_(False)
        if self.features == "penultimate":
            if getattr(visual, "proj", None) is None:
                raise ExtractorError(
                    f"extractor 'clip': features=penultimate needs a ViT image tower with a projection; "
                    f"{self.model_name} has none, use features=projected"
                )
            visual.proj = None  # forward now returns the pooled features before the projection
        self._visual = visual
        self._preprocess = preprocess
        self.dtype = torch.float16 if self.fp16 else torch.float32
        probe = self._forward([np.zeros((32, 32, 3), np.uint8)])
        self.dim = int(probe.shape[1])
        # A canonical identity: defaults spelled out, and the weights by content rather than path.
        self.identity = {
            "model": self.model_name,
            "features": self.features,
            "fp16": self.fp16,
            "weights": options.weights_digest(self.weights_path),
        }

    def _forward(self, images: Sequence[np.ndarray]) -> np.ndarray:
        from PIL import Image

        torch = self._torch
        batch = torch.stack([
            self._preprocess(Image.fromarray(np.ascontiguousarray(im[..., :3], dtype=np.uint8), "RGB"))
            for im in images
        ])
        with torch.inference_mode():
            out = self._visual(batch.to(self.device, dtype=self.dtype))
        if isinstance(out, (tuple, list)):  # towers that also return tokens
            out = out[0]
        return out.float().cpu().numpy()

    def embed_batch(self, images: Sequence[np.ndarray]) -> np.ndarray:
        chunks = [self._forward(images[i : i + self.batch_size]) for i in range(0, len(images), self.batch_size)]
        return np.concatenate(chunks).astype(np.float32, copy=False)


@hookimpl
def register_extractors(register):
    register(ClipExtractor)
