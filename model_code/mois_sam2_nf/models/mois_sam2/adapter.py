"""Evaluation adapter ``"mois_sam2"``: MOIS-SAM2 on whole scans.

Same click protocol as the plain ``"sam2"`` adapter (:class:`~mois_sam2_nf.models.sam2.adapter.SAM2Segmenter`), with
a MOIS-SAM2 predictor whose exemplar bank persists across the lesions of a scan, and :meth:`propagate` returning the
lesions found by semantic propagation (docs/method.md, Propagation to unprompted lesions) on the original grid.
"""

from __future__ import annotations

import numpy as np

from mois_sam2_nf.segmenters import register_segmenter
from mois_sam2_nf.models.sam2.adapter import SAM2Segmenter
from mois_sam2_nf.models.sam2.volume_predictor import VolumeInferenceMixin
from mois_sam2_nf.models.session import check_propagation_mode

#: predictor class the MOIS-SAM2 adapter builds (model ``_target_`` override)
MOIS_PREDICTOR_TARGET = "mois_sam2_nf.models.mois_sam2.predictor.MOISSAM2Predictor"


@register_segmenter("mois_sam2")
class MOISSAM2Segmenter(SAM2Segmenter):
    """MOIS-SAM2 volume segmenter: interactive lesions plus propagation to unprompted ones.

    Args:
        config: MOIS-SAM2 config name (e.g. ``"mois_sam2.1_hiera_b+"``) or YAML path; ``None`` = the checkpoint's.
        checkpoint: ``{"model": state_dict[, "meta": ...]}`` file, or ``None`` for random weights.
        num_max_exemplars: exemplars used per semantic call (evaluation default 7).
        exemplar_propagation: False gives the ablation without the propagation pass (:attr:`propagates` False); the
            exemplar bank is still built, so interactive masks are unchanged.
        propagation_mode: ``"overlap"`` (default, the reference's main mode), ``"com_all"`` or ``"com_prompted"``
            (CoM clicks on every / the prompted slices; :meth:`ScanSession.propagate`).
        other arguments: as :class:`~mois_sam2_nf.models.sam2.adapter.SAM2Segmenter` (for checkpoints without
            metadata ``imagenet_norm`` defaults to False for MOIS-SAM2).
    """

    name = "mois_sam2"
    propagates = True
    default_imagenet_norm = False

    def __init__(self, config: str | None = None, checkpoint: str | None = None, device: str = "cpu",
                 precision: str = "fp32", num_max_exemplars: int = 7, early_stop_k: int | None = None,
                 imagenet_norm: bool | None = None, offload_state_to_cpu: bool = False,
                 exemplar_propagation: bool = True, propagation_mode: str = "overlap",
                 correction_reuse_k: int | None = None, cache_dtype: str = "fp32",
                 track_continuity: bool = False, keep_clicked_components: bool = True) -> None:
        self.num_max_exemplars = int(num_max_exemplars)
        self.propagates = bool(exemplar_propagation)
        self.propagation_mode = check_propagation_mode(propagation_mode)
        super().__init__(config, checkpoint, device=device, precision=precision, early_stop_k=early_stop_k,
                         imagenet_norm=imagenet_norm, offload_state_to_cpu=offload_state_to_cpu,
                         correction_reuse_k=correction_reuse_k, cache_dtype=cache_dtype,
                         track_continuity=track_continuity, keep_clicked_components=keep_clicked_components)

    def build_predictor(self, config: str, checkpoint: str | None, device: str, overrides: list[str]
                        ) -> VolumeInferenceMixin:
        """Build the MOIS-SAM2 volume predictor (``overrides`` plus this adapter's ``num_max_exemplars``)."""
        from mois_sam2_nf.models.mois_sam2 import build_mois_sam2

        return build_mois_sam2(config, checkpoint, device=device, target=MOIS_PREDICTOR_TARGET,
                               overrides=[*overrides, f"++model.num_max_exemplars={self.num_max_exemplars}"])

    def propagate(self) -> np.ndarray | None:
        """Bool mask (original grid) of the lesions found from the exemplar bank, outside the current lesion masks."""
        session = self._session()
        prompted = np.zeros(session.shape, dtype=bool)
        for mask in session.masks.values():
            prompted |= mask
        return session.to_original(session.propagate(prompted, self.propagation_mode))
