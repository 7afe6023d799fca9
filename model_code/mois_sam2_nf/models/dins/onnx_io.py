"""DINs as ONNX: export from PyTorch, the ONNX Runtime session used for inference, and the export check.

Inputs ``image`` float32 ``(B, 1, D, H, W)`` and ``guide`` ``(B, 2, D, H, W)``; output ``logits`` ``(B, 2, D, H, W)``;
B, D, H, W are dynamic. Exported with the legacy TorchScript exporter, opset 17.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from mois_sam2_nf.atomic import atomic_path
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.models.dins.network import DINsNet

OPSET = 17
#: export check: ONNX Runtime against PyTorch
MAX_ABS_DIFF = 1e-4


def export_onnx(model: DINsNet, path: str | os.PathLike[str], example_shape: Sequence[int] = (4, 64, 32)) -> Path:
    """Write ``model`` (eval mode, CPU) to ``path`` atomically; ``example_shape`` is a valid ``(D, H, W)``."""
    model = model.eval().cpu()
    image = torch.zeros((1, 1, *example_shape))
    guide = torch.zeros((1, 2, *example_shape))
    dynamic = {0: "B", 2: "D", 3: "H", 4: "W"}
    with atomic_path(path) as tmp, torch.no_grad():
        torch.onnx.export(model, (image, guide), str(tmp), input_names=["image", "guide"], output_names=["logits"],
                          opset_version=OPSET, dynamic_axes={"image": dynamic, "guide": dynamic, "logits": dynamic},
                          dynamo=False)
    return Path(path)


def onnx_session(path: str | os.PathLike[str]) -> ort.InferenceSession:
    """ONNX Runtime session: CUDA first when available, otherwise CPU; :class:`InputError` for a bad file."""
    if not Path(path).is_file():
        raise InputError(f"{path}: checkpoint file not found")
    available = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    try:
        return ort.InferenceSession(str(path), providers=providers)
    except Exception as err:  # onnxruntime raises its own exception types for unreadable models
        raise InputError(f"{path}: not a readable ONNX model ({str(err).splitlines()[0]})") from None


def onnx_logits(session: ort.InferenceSession, inputs: torch.Tensor) -> torch.Tensor:
    """Run the session on ``(B, 3, D, H, W)`` (image + guide channels).

    Returns logits ``(B, 2, D, H, W)`` on the input device.
    """
    array = inputs.detach().float().cpu().numpy()
    (logits,) = session.run(["logits"], {"image": np.ascontiguousarray(array[:, :1]),
                                         "guide": np.ascontiguousarray(array[:, 1:])})
    return torch.from_numpy(logits).to(inputs.device)


def check_export(model: DINsNet, session: ort.InferenceSession, shapes: Sequence[Sequence[int]],
                 seed: int = 0) -> float:
    """Largest |ONNX Runtime - PyTorch| over random inputs of the given ``(D, H, W)`` shapes; raises above 1e-4."""
    generator = torch.Generator().manual_seed(seed)
    model = model.eval().cpu()
    worst = 0.0
    for shape in shapes:
        inputs = torch.rand((1, 3, *shape), generator=generator)
        with torch.no_grad():
            reference = model(inputs[:, :1], inputs[:, 1:])
        worst = max(worst, float((onnx_logits(session, inputs) - reference).abs().max()))
    if worst > MAX_ABS_DIFF:
        raise RuntimeError(f"ONNX export differs from PyTorch by {worst:.2e} (> {MAX_ABS_DIFF:.0e})")
    return worst
