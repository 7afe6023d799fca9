"""Evaluation adapter ``"nninteractive"``: nnInteractive through its own inference session (interactive only).

nnInteractive works on the array as stored: the scan goes to ``set_image`` as ``(1, I, J, K)`` float32 raw
intensities (the session normalises itself and ignores the spacing), a click ``(i, j, k)`` is a point interaction at
exactly those indices, and the session writes its prediction into a ``(I, J, K)`` uint8 target buffer, so the mask is
already on the original grid.

Each lesion is its own target: the session holds one target at a time, so when a different lesion is clicked the
session's interactions and buffer are reset and that lesion's earlier clicks are replayed, one prediction per click
as when they were first given; every new click is one point interaction followed by a prediction.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.segmenters import Click, Scan, register_segmenter
from mois_sam2_nf.models.click_history import ClickHistorySegmenter

#: what a model folder must hold for the session to load it (besides ``fold_<x>/<checkpoint_name>``)
MODEL_FILES: tuple[str, ...] = ("plans.json", "dataset.json")


def _quiet() -> contextlib.AbstractContextManager[Any]:
    """Silence the session's progress prints (it prints on every prediction)."""
    return contextlib.redirect_stdout(io.StringIO())


@contextlib.contextmanager
def _numpy_seed(seed: int) -> Iterator[None]:
    """Seed numpy's global generator for one prediction and restore it afterwards.

    The session's refinement planner draws boxes from numpy's global generator when its greedy cover leaves voxels
    uncovered; seeding it per click makes a prediction (and a replayed lesion) reproducible.
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


@register_segmenter("nninteractive")
class NNInteractiveSegmenter(ClickHistorySegmenter):
    """nnInteractive (interactive: positive / negative point interactions, each lesion its own target).

    Args:
        checkpoint: the nnInteractive model folder (``plans.json``, ``dataset.json``, ``inference_info.json``,
            ``fold_<x>/checkpoint_final.pth``); ``None`` = not configured (the adapter is then not available).
        use_fold: ``fold_<x>`` folder of the model; ``None`` = the only one.
        checkpoint_name: checkpoint file in the fold folder.
        device: torch device string.
        do_autozoom: the session's automatic zoom-out when a prediction reaches its patch border.
        torch_n_threads: CPU threads the session sets for torch (``None`` = keep the current number).
        other keywords: options of the other adapters (e.g. ``fold``, ``precision``) are accepted and ignored.
    """

    name = "nninteractive"

    def __init__(self, checkpoint: str | os.PathLike[str] | None = None, use_fold: int | str | None = None,
                 checkpoint_name: str = "checkpoint_final.pth", device: str = "cpu", do_autozoom: bool = True,
                 torch_n_threads: int | None = None, **_: Any) -> None:
        super().__init__()
        if checkpoint is None:
            raise InputError("model 'nninteractive' is not available: no model folder configured (set "
                             "NNINTERACTIVE_MODEL_DIR or model.checkpoint=<nnInteractive model folder>)")
        folder = Path(checkpoint)
        missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
        if missing:
            raise InputError(f"{folder}: not an nnInteractive model folder (missing {', '.join(missing)})")
        try:
            import torch
            from nnInteractive.inference.inference_session import nnInteractiveInferenceSession
        except ImportError as err:
            raise InputError(f"model 'nninteractive' is not available: the nninteractive package cannot be imported "
                             f"({err}); install nninteractive==2.6.0") from None
        self._torch = torch
        threads = torch.get_num_threads() if torch_n_threads is None else int(torch_n_threads)
        with _quiet():
            self.session = nnInteractiveInferenceSession(device=torch.device(device), use_torch_compile=False,
                                                         torch_n_threads=threads, do_autozoom=bool(do_autozoom))
            try:
                self.session.initialize_from_trained_model_folder(str(folder), use_fold=use_fold,
                                                                  checkpoint_name=checkpoint_name)
            except (AssertionError, FileNotFoundError, KeyError, RuntimeError, ValueError) as err:
                reason = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise InputError(f"{folder}: nnInteractive cannot load this model folder ({reason})") from None
        self.current: int | None = None
        self.buffer: Any = None

    def start_scan(self, scan: Scan) -> None:
        """Hand the raw ``(I, J, K)`` array to the session (it normalises in a background thread)."""
        self.end_scan()
        self.scan = scan
        with _quiet():
            self.session.set_image(np.asarray(scan.image, dtype=np.float32)[None])

    def add_clicks(self, lesion_id: int, clicks: list[Click]) -> np.ndarray:
        """Point interactions for ``clicks`` on target ``lesion_id``; bool ``(I, J, K)`` mask of that target."""
        history = self.record(lesion_id, clicks)
        first = len(history) - len(clicks)
        if lesion_id != self.current:
            self._new_target()
            first = 0
        self.current = lesion_id
        with _quiet():
            for index in range(first, len(history)):
                click = history[index]
                with _numpy_seed(index):
                    self.session.add_point_interaction((click.i, click.j, click.k),
                                                       include_interaction=click.positive)
        return self.buffer.numpy() > 0

    def _new_target(self) -> None:
        """Reset the session's interactions and give it an empty target buffer."""
        assert self.scan is not None  # set by start_scan()
        with _quiet():
            self.session.reset_interactions()
            self.buffer = self._torch.zeros(self.scan.shape, dtype=self._torch.uint8)
            self.session.set_target_buffer(self.buffer)

    def forget_lesion(self, lesion_id: int) -> None:
        """Drop the clicks of ``lesion_id``; its next click starts a fresh target."""
        super().forget_lesion(lesion_id)
        if self.current == lesion_id:
            self.current = None

    def end_scan(self) -> None:
        """Forget the scan's targets (the session keeps the image until the next ``start_scan``)."""
        self.scan, self.current, self.buffer, self.history = None, None, None, {}
