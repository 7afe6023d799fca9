"""Per-lesion click histories for interactive segmenters that recompute a lesion from all its clicks.

The click-guided CNNs and region growing segment a lesion from its whole click history at every interaction and do
not propagate; :class:`ClickHistorySegmenter` holds that shared part of the adapter interface
(:class:`~mois_sam2_nf.segmenters.InteractiveSegmenter`).
"""

from __future__ import annotations

import numpy as np

from mois_sam2_nf.segmenters import Click, Scan


class ClickHistorySegmenter:
    """Interactive, non-propagating segmenter base: per-lesion click histories on the current scan.

    Subclasses set :attr:`scan` in ``start_scan`` and build each lesion's mask from :meth:`record`'s history.
    """

    interactive = True
    automatic_capable = False
    propagates = False

    def __init__(self) -> None:
        self.scan: Scan | None = None
        self.history: dict[int, list[Click]] = {}

    def record(self, lesion_id: int, clicks: list[Click]) -> list[Click]:
        """Validate ``clicks`` against the scan, append them to ``lesion_id``'s history and return that history.

        Raises:
            RuntimeError: no scan started. :class:`~mois_sam2_nf.errors.InputError`: a click outside the volume.
        """
        if self.scan is None:
            raise RuntimeError(f"{type(self).__name__}: start_scan() must be called before clicks")
        for click in clicks:
            self.scan.check_click(click)
        history = self.history.setdefault(lesion_id, [])
        history.extend(Click(*click) for click in clicks)
        return history

    def forget_lesion(self, lesion_id: int) -> None:
        """Drop the click history of ``lesion_id``."""
        self.history.pop(lesion_id, None)

    def propagate(self) -> np.ndarray | None:
        """These segmenters do not propagate to unprompted lesions."""
        return None

    def automatic(self) -> np.ndarray | None:
        """These segmenters need clicks."""
        return None
