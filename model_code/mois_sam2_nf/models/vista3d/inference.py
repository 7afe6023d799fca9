"""VISTA3D inference through MONAI's inferers, on a scan already on the working grid.

Tensors here are ``(1, 1, R, C, F)`` float32 (rows, cols, frames of the padded working grid); clicks are working-grid
voxels ``(r, c, f)``. Both functions return logits of the same shape on the CPU; foreground is ``logits > 0``.

* :func:`point_logits`: ``monai.apps.vista3d.inferer.point_based_window_inferer`` with NF as the zero-shot prompt
  class, one window per click (centred on it, clamped to the volume) and the previous logits of the lesion, which
  VISTA3D merges with the new point-head output (connected components under the clicks) and which fill every voxel
  no window covers. At a lesion's first interaction the voxels no window covers are NaN, as MONAI leaves them; they
  are handed back as VISTA3D's "no object" logit (``NINF_VALUE``, -9999), because VISTA3D's merge turns a NaN
  previous logit into NaN whatever the new window predicts there.
* :func:`automatic_logits`: ``monai.inferers.sliding_window_inference`` over the whole volume with the class head
  and NF's class index (gaussian blending).

:class:`WindowEmbeddingCache` reuses the point-branch image embedding of a window across clicks through VISTA3D's
own ``keep_cache`` switch, keyed by the window, because VISTA3D keeps one embedding only (that of the last window it
ran, whichever it was).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
from monai.apps.vista3d.inferer import point_based_window_inferer
from monai.data import MetaTensor
from monai.inferers import sliding_window_inference
from monai.networks.nets.vista3d import VISTA3D

from mois_sam2_nf.models.vista3d.config import VISTA3DInferenceConfig

Voxel = tuple[int, int, int]


class WindowEmbeddingCache:
    """The VISTA3D predictor handed to the point inferer, with the image embedding of each window kept.

    For a window seen before, the embedding stored for it is put back into ``network.image_embeddings`` and the
    network runs with ``keep_cache=True``, so only the point head runs; for a new window the encoder runs and its
    embedding is stored. At most ``capacity`` windows are kept (least recently used dropped); ``capacity`` 0 runs
    the encoder every time. The embedding depends on the image window only, so results equal those without the
    cache. One cache serves one scan (call :meth:`clear` when the image changes).

    Attributes:
        hits: calls answered from a stored embedding.
        misses: calls that ran the encoder.
    """

    def __init__(self, network: VISTA3D, capacity: int) -> None:
        self.network, self.capacity = network, int(capacity)
        self.store: OrderedDict[tuple[tuple[int, int], ...], torch.Tensor] = OrderedDict()
        self.hits = self.misses = 0

    def __call__(self, window: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """Run the network on ``window`` (``patch_coords`` names the window in the padded image)."""
        if self.capacity <= 0:
            self.misses += 1
            return self.network(window, **kwargs)
        key = tuple((int(s.start), int(s.stop)) for s in kwargs["patch_coords"][0][2:])
        cached = self.store.get(key)
        self.network.image_embeddings = cached  # type: ignore[assignment]  # MONAI declares it as None only
        try:
            output = self.network(window, keep_cache=True, **kwargs)
            embedding: torch.Tensor | None = self.network.image_embeddings
        finally:
            self.network.image_embeddings = None
        if cached is not None:
            self.hits += 1
            self.store.move_to_end(key)
        elif embedding is not None:  # None when no click fell inside the window (the network returned early)
            self.misses += 1
            self.store[key] = embedding
            while len(self.store) > self.capacity:
                self.store.popitem(last=False)
        return output

    def clear(self) -> None:
        """Forget every stored embedding (new scan)."""
        self.store.clear()
        self.network.image_embeddings = None


def point_logits(predictor: WindowEmbeddingCache, image: torch.Tensor, positives: Sequence[Voxel],
                 negatives: Sequence[Voxel], previous: torch.Tensor | None,
                 inference: VISTA3DInferenceConfig) -> torch.Tensor:
    """Point-branch logits for one object from all its clicks.

    Args:
        predictor: the network (wrapped in its embedding cache).
        image: ``(1, 1, R, C, F)`` float32 working volume on the network's device.
        positives, negatives: working-grid voxels ``(r, c, f)`` of the object's clicks.
        previous: ``(1, 1, R, C, F)`` logits of the object's previous interaction (``None`` at its first one);
            NaN voxels count as "no object".
        inference: the config's ``inference`` section (``roi``, ``nf_class``, ``center_only``, ``margin``).

    Returns:
        ``(1, 1, R, C, F)`` float32 logits on the CPU; at the first interaction NaN where no window ran.
    """
    device = image.device
    if previous is not None:
        previous = torch.nan_to_num(previous, nan=float(predictor.network.NINF_VALUE))
    voxels = [*positives, *negatives]
    coords = torch.tensor([voxels], dtype=torch.float32, device=device)
    labels = torch.tensor([[1] * len(positives) + [0] * len(negatives)], dtype=torch.long, device=device)
    prompt_class = torch.tensor([[inference.nf_class]], dtype=torch.long, device=device)
    # MONAI annotates ``predictor`` as a Module; it only calls it, which the embedding cache supports
    logits = point_based_window_inferer(image, roi_size=inference.roi, predictor=predictor,  # type: ignore[arg-type]
                                        point_coords=coords, point_labels=labels, class_vector=None,
                                        prompt_class=prompt_class, prev_mask=previous,
                                        center_only=inference.center_only, margin=inference.margin,
                                        transpose=True)
    return _plain(logits)


def automatic_logits(network: VISTA3D, image: torch.Tensor, inference: VISTA3DInferenceConfig) -> torch.Tensor:
    """Class-head logits of NF (``inference.nf_class``) over ``image`` ``(1, 1, R, C, F)``; same shape, CPU."""
    class_vector = torch.tensor([[inference.nf_class]], dtype=torch.long, device=image.device)
    logits = sliding_window_inference(image, roi_size=inference.roi, sw_batch_size=inference.sw_batch,
                                      predictor=network, overlap=inference.overlap, mode="gaussian",
                                      class_vector=class_vector, transpose=True)
    return _plain(logits)


def _plain(logits: object) -> torch.Tensor:
    """A plain float32 CPU tensor from an inferer's output (MONAI's inferers return one ``MetaTensor`` for one tensor
    in; their signature also allows tuples and dicts, which a VISTA3D head never returns)."""
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"VISTA3D inference returned {type(logits).__name__}, expected a tensor")
    tensor = logits.as_tensor() if isinstance(logits, MetaTensor) else logits
    return tensor.detach().to(device="cpu", dtype=torch.float32)


def foreground_probability(logits: torch.Tensor) -> torch.Tensor:
    """``(R, C, F)`` sigmoid of ``(1, 1, R, C, F)`` logits; NaN (never predicted) counts as background."""
    return torch.sigmoid(torch.nan_to_num(logits[0, 0], nan=-float("inf")))
