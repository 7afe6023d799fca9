"""Evaluation adapter ``"sam2"``: plain SAM2 on whole scans through :class:`~mois_sam2_nf.models.session.ScanSession`.

Implements :class:`~mois_sam2_nf.segmenters.InteractiveSegmenter`. Clicks arrive as original-grid voxel
indices ``(i, j, k)``; a lesion's later clicks are SAM2 corrections of its object
(:meth:`~mois_sam2_nf.models.session.ScanSession.segment_lesion`) and the returned mask lies on the original grid.
The MOIS-SAM2 adapter subclasses this one and adds propagation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import Click, Scan, register_segmenter
from mois_sam2_nf.models.checkpoint_meta import inference_settings
from mois_sam2_nf.models.sam2.volume_predictor import VolumeInferenceMixin
from mois_sam2_nf.models.session import (
    ScanSession,
    check_cache_dtype,
    check_frame_count,
    check_precision,
)

#: predictor class the plain-SAM2 adapter builds (model ``_target_`` override)
SAM2_PREDICTOR_TARGET = "mois_sam2_nf.models.sam2.volume_predictor.SAM2VolumePredictor"


def check_checkpoint(checkpoint: str | None) -> str | None:
    """Return ``checkpoint`` unchanged if it is ``None`` or an existing file; raise :class:`InputError` otherwise."""
    if checkpoint is not None and not Path(checkpoint).is_file():
        raise InputError(f"{checkpoint}: checkpoint file not found")
    return checkpoint


@register_segmenter("sam2")
class SAM2Segmenter:
    """Plain SAM2 volume segmenter (interactive only, no propagation to unprompted lesions).

    ``config``, ``imagenet_norm`` and the model's image size come from the checkpoint's metadata
    (:mod:`mois_sam2_nf.models.checkpoint_meta`) when not given; a given value that contradicts the metadata is an
    :class:`InputError`.

    Args:
        config: config name (e.g. ``"sam2.1_hiera_t"``) or YAML path understood by the model builder; ``None`` = the
            checkpoint's (required for checkpoints without metadata and for random weights).
        checkpoint: ``{"model": state_dict[, "meta": ...]}`` file, or ``None`` for random weights.
        device: torch device string.
        precision: ``"fp32"`` or ``"bf16"`` (autocast).
        early_stop_k: stop each propagation direction after k consecutive absent frames (``None`` = exact).
        imagenet_norm: ImageNet-normalise frames; ``None`` = the checkpoint's, or for checkpoints without metadata
            :attr:`default_imagenet_norm` (true for plain SAM2, as official SAM2.1 weights expect).
        offload_state_to_cpu: keep tracking outputs and the embedding cache in CPU memory.
        correction_reuse_k: a correction re-tracks outward from its clicked slices and stops after k unchanged slices
            (``None`` = exact; :class:`~mois_sam2_nf.models.session.ScanSession`).
        cache_dtype: ``"fp32"`` (exact) or ``"bf16"`` storage of the embedding cache.
        track_continuity: end a lesion's propagation pass where its slice masks stop overlapping (``False`` = SAM2's
            tracking; :class:`~mois_sam2_nf.models.session.ScanSession`).
        keep_clicked_components: a lesion's mask keeps only the 3-D components that contain one of its positive
            clicks (``True``, default) or is the model's mask as it is (``False``, the reference's output).
    """

    name = "sam2"
    interactive = True
    automatic_capable = False
    propagates = False
    default_imagenet_norm = True

    def __init__(
        self,
        config: str | None = None,
        checkpoint: str | None = None,
        device: str = "cpu",
        precision: str = "fp32",
        early_stop_k: int | None = None,
        imagenet_norm: bool | None = None,
        offload_state_to_cpu: bool = False,
        correction_reuse_k: int | None = None,
        cache_dtype: str = "fp32",
        track_continuity: bool = False,
        keep_clicked_components: bool = True,
    ) -> None:
        self.precision = check_precision(precision)
        self.early_stop_k = check_frame_count("early_stop_k", early_stop_k)
        self.correction_reuse_k = check_frame_count("correction_reuse_k", correction_reuse_k)
        self.cache_dtype = check_cache_dtype(cache_dtype)
        self.offload_state_to_cpu = offload_state_to_cpu
        self.track_continuity = track_continuity
        self.keep_clicked_components = keep_clicked_components
        settings = inference_settings(self.name, check_checkpoint(checkpoint), config, imagenet_norm,
                                      self.default_imagenet_norm)
        self.imagenet_norm = settings.imagenet_norm
        self.predictor = self.build_predictor(settings.config, checkpoint, device, settings.overrides)
        self.session: ScanSession | None = None
        self.history: dict[int, list[Click]] = {}

    def build_predictor(self, config: str, checkpoint: str | None, device: str, overrides: list[str]
                        ) -> VolumeInferenceMixin:
        """Build the plain SAM2 volume predictor (``overrides``: Hydra-style model-config overrides)."""
        from mois_sam2_nf.models.sam2 import build_sam2_model

        return build_sam2_model(config, checkpoint, device=device, target=SAM2_PREDICTOR_TARGET, overrides=overrides)

    def start_scan(self, scan: Scan) -> None:
        """Create the scan session (frames prepared; each frame is encoded on first use, once per scan)."""
        self.end_scan()
        self.session = ScanSession(self.predictor, scan, precision=self.precision, imagenet_norm=self.imagenet_norm,
                                   early_stop_k=self.early_stop_k, offload_state_to_cpu=self.offload_state_to_cpu,
                                   correction_reuse_k=self.correction_reuse_k, cache_dtype=self.cache_dtype,
                                   track_continuity=self.track_continuity,
                                   keep_clicked_components=self.keep_clicked_components)

    def add_clicks(self, lesion_id: int, clicks: list[Click]) -> np.ndarray:
        """Add this interaction's new clicks of ``lesion_id``; return its bool mask on the original grid."""
        session = self._session()
        for click in clicks:
            session.scan.check_click(click)
        history = self.history.setdefault(lesion_id, [])
        history.extend(Click(*click) for click in clicks)
        return session.to_original(session.segment_lesion(lesion_id, history))

    def forget_lesion(self, lesion_id: int) -> None:
        """Drop the click history and mask of ``lesion_id`` (and, for MOIS-SAM2, its exemplars); the scan's embedding
        cache is kept."""
        self.history.pop(lesion_id, None)
        if self.session is not None:
            self.session.forget_lesion(lesion_id)

    def propagate(self) -> np.ndarray | None:
        """Plain SAM2 does not propagate to unprompted lesions."""
        return None

    def automatic(self) -> np.ndarray | None:
        """Plain SAM2 has no automatic mode."""
        return None

    def end_scan(self) -> None:
        """Free the scan session, its caches and the click history."""
        if self.session is not None:
            self.session.close()
        self.session = None
        self.history = {}

    def _session(self) -> ScanSession:
        if self.session is None:
            raise RuntimeError("start_scan() must be called before clicks or propagation")
        return self.session
