"""Evaluation adapter ``"sw_fastedit"``: SW-FastEdit on whole scans (baselines spec sections 1 and 5).

Each lesion is segmented from its own clicks only (empty guidance, no previous prediction; the runner ORs the lesion
masks). The scan is put on the working grid once per scan; every interaction runs a MONAI sliding-window inference
over the whole working volume with the lesion's click balls as guidance.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.evaluation.interface import Click, Scan, register_segmenter
from mois_sam2_nf.models.guided_cnn.grid import WorkingVolume, working_volume
from mois_sam2_nf.models.guided_cnn.guidance import ball_guidance
from mois_sam2_nf.models.sw_fastedit.config import load_config
from mois_sam2_nf.models.sw_fastedit.network import build_network
from mois_sam2_nf.models.sw_fastedit.train import META_FILE


def _checked_meta(checkpoint: Path, config: dict[str, Any], fold: int) -> None:
    """Refuse a checkpoint whose ``meta.json`` contradicts the inference config or the evaluated fold."""
    path = checkpoint.parent / META_FILE
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: missing (SW-FastEdit checkpoints are written with their meta.json)") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err.msg})") from None
    for section in ("network", "grid"):
        if meta.get("config", {}).get(section) != config[section]:
            raise InputError(f"{path}: trained with {section} {meta.get('config', {}).get(section)}, the inference "
                             f"config has {config[section]}")
    if meta.get("fold") != fold:
        raise InputError(f"{path}: trained for fold {meta.get('fold')}, evaluation asks for fold {fold}")


@register_segmenter("sw_fastedit")
class SWFastEditSegmenter:
    """SW-FastEdit (interactive; each lesion from its own clicks).

    Args:
        config: ``sw_fastedit``, ``sw_fastedit_smoke`` or a YAML path (:func:`load_config`).
        checkpoint: ``{"model": state_dict}`` file with its ``meta.json`` beside it; ``None`` = random weights
            (tests only; no meta check).
        fold: project fold the evaluation expects (checked against ``meta.json``).
        device: torch device string.
        other keywords: options of the other adapters (e.g. ``precision``) are accepted and ignored.
    """

    name = "sw_fastedit"
    interactive = True
    automatic_capable = False
    propagates = False

    def __init__(self, config: str = "sw_fastedit", checkpoint: str | os.PathLike[str] | None = None, fold: int = 1,
                 device: str = "cpu", **_: Any) -> None:
        self.config = load_config(config)
        self.device = torch.device(device)
        self.network = build_network(self.config["network"]["filters"]).to(self.device).eval()
        if checkpoint is not None:
            path = Path(checkpoint)
            if not path.is_file():
                raise InputError(f"{path}: checkpoint file not found")
            _checked_meta(path, self.config, int(fold))
            state = torch.load(path, map_location=self.device, weights_only=True)
            try:
                self.network.load_state_dict(state["model"])
            except (KeyError, RuntimeError) as err:
                raise InputError(f"{path}: not an SW-FastEdit checkpoint for this config "
                                 f"({str(err).splitlines()[0]})") from None
        self.volume: WorkingVolume | None = None
        self.history: dict[int, list[Click]] = {}

    def start_scan(self, scan: Scan) -> None:
        """Put the scan on the working grid (once per scan)."""
        grid = self.config["grid"]
        self.volume = working_volume(scan.image, scan.view, grid["spacing"], grid["divisor"])
        self.scan, self.history = scan, {}

    def add_clicks(self, lesion_id: int, clicks: list[Click]) -> np.ndarray:
        """Add clicks to ``lesion_id``'s history and segment it from that history alone; bool ``(I, J, K)`` mask."""
        volume = self._volume()
        for click in clicks:
            self.scan.check_click(click)
        history = self.history.setdefault(lesion_id, [])
        history.extend(Click(*click) for click in clicks)
        positives = [volume.voxel(c[:3]) for c in history if c.positive]
        negatives = [volume.voxel(c[:3]) for c in history if not c.positive]
        guidance = ball_guidance(tuple(volume.image.shape[1:]), positives, negatives)
        inputs = torch.cat([volume.image, guidance])[None].to(self.device)
        inference = self.config["inference"]
        with torch.no_grad():
            logits = sliding_window_inference(inputs, roi_size=inference["roi"], sw_batch_size=inference["sw_batch"],
                                              predictor=self.network, overlap=inference["overlap"], mode="gaussian")
        return volume.to_original(torch.softmax(logits, dim=1)[0, 1])

    def forget_lesion(self, lesion_id: int) -> None:
        """Drop the click history of ``lesion_id``."""
        self.history.pop(lesion_id, None)

    def propagate(self) -> np.ndarray | None:
        """SW-FastEdit does not propagate."""
        return None

    def automatic(self) -> np.ndarray | None:
        """SW-FastEdit has no automatic mode."""
        return None

    def end_scan(self) -> None:
        """Drop the working volume and the click histories."""
        self.volume, self.history = None, {}

    def _volume(self) -> WorkingVolume:
        if self.volume is None:
            raise RuntimeError("start_scan() must be called before clicks")
        return self.volume
