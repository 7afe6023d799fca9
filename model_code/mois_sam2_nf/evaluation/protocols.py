"""The interaction protocols (docs/evaluation_protocol.md), driving any :class:`InteractiveSegmenter` on one scan.

Modes:

* ``lesion_wise_corrective``: each of the ``m = min(K, n)`` prompted targets (``targets.py``) gets up to
  ``interactions_per_lesion`` interactions (stop early when its Dice reaches ``dsc_local_max``); the union of the
  target masks is the prediction; a propagating model then propagates once (unless
  ``propagate_when_all_prompted=false`` and the scan has fewer than K targets, which reproduces the reference).
* ``lesion_wise_non_corrective``: the same with one interaction per target.
* ``prompted_lesion_sweep``: the corrective lesion-wise pass, but a propagating model propagates after *every*
  target, so one pass logs the scan Dice reached with ``k = 1..m`` prompted lesions (propagation rows; ``k`` is the
  largest ``target_rank`` logged before the row). The prediction is the union after the last target plus its
  propagation. For non-propagating models the ``dice_scan`` of each target's last interaction row is that curve.
  The scan prediction after each target ``k`` (and its propagation) also goes to the caller's ``on_prompted``
  callback, through which the runner computes the final metrics at every ``k``.
* ``global_corrective``: the whole ground truth is target 0; clicks come from the full current prediction
  (including propagation); a propagating model propagates after every interaction; stop at scan Dice
  ``>= stop_dice`` or after ``max_interactions``.
* ``global_non_corrective``: interactive models get one global interaction; automatic models (or ``automatic=true``)
  call :meth:`automatic` once and log one ``automatic`` step.

An interaction that yields no new click is counted and logged, and the model is not called.

All masks are bool ``(I, J, K)`` arrays on the original grid. Each logged step is an :class:`InteractionRow` with the
protocol columns of ``interactions.csv`` (the runner adds the identifiers).
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from mois_sam2_nf.errors import InputError
from mois_sam2_nf.evaluation.clicks import ClickConfig, simulate_clicks
from mois_sam2_nf.segmenters import Click, InteractiveSegmenter, Scan
from mois_sam2_nf.evaluation.metrics import dice
from mois_sam2_nf.evaluation.targets import LESION_ORDERS, PromptPlan

MODES: tuple[str, ...] = (
    "lesion_wise_corrective",
    "lesion_wise_non_corrective",
    "prompted_lesion_sweep",
    "global_corrective",
    "global_non_corrective",
)
LESION_WISE_MODES: frozenset[str] = frozenset(MODES[:3])
NON_CORRECTIVE_MODES: frozenset[str] = frozenset(("lesion_wise_non_corrective", "global_non_corrective"))


@dataclass(frozen=True)
class ProtocolConfig:
    """Protocol settings (Hydra group ``protocol/``).

    Attributes:
        mode: one of :data:`MODES`.
        num_lesions: ``K``, prompted targets per scan (lesion-wise modes).
        lesion_order: ``size_desc`` or ``label_order``.
        interactions_per_lesion: budget per target; must be 1 in non-corrective modes.
        dsc_local_max: stop a target early at this Dice.
        max_interactions: ``N``, budget of ``global_corrective`` (must be 1 for ``global_non_corrective``).
        stop_dice: ``global_corrective`` stops at this scan Dice.
        propagate_when_all_prompted: propagate also when the scan has fewer than K targets (fix (b)).
        automatic: ``global_non_corrective`` only: ``None`` = use :meth:`automatic` iff the model is not
            interactive; ``True``/``False`` force it.
    """

    mode: str = "lesion_wise_corrective"
    num_lesions: int = 20
    lesion_order: str = "size_desc"
    interactions_per_lesion: int = 3
    dsc_local_max: float = 1.0
    max_interactions: int = 60
    stop_dice: float = 0.8
    propagate_when_all_prompted: bool = True
    automatic: bool | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"protocol.mode={self.mode!r} is not one of {', '.join(MODES)}")
        if self.lesion_order not in LESION_ORDERS:
            raise InputError(f"protocol.lesion_order={self.lesion_order!r} is not one of {', '.join(LESION_ORDERS)}")
        for name in ("num_lesions", "interactions_per_lesion", "max_interactions"):
            if int(getattr(self, name)) < 1:
                raise InputError(f"protocol.{name}={getattr(self, name)} must be >= 1")
        if self.mode == "lesion_wise_non_corrective" and self.interactions_per_lesion != 1:
            raise InputError(f"protocol.interactions_per_lesion={self.interactions_per_lesion} contradicts mode "
                             f"{self.mode} (one interaction per lesion)")
        if self.mode == "global_non_corrective" and self.max_interactions != 1:
            raise InputError(f"protocol.max_interactions={self.max_interactions} contradicts mode {self.mode} "
                             "(one interaction)")
        if self.automatic is not None and self.mode != "global_non_corrective":
            raise InputError(f"protocol.automatic is only meaningful for global_non_corrective, not {self.mode}")

    @property
    def sweep(self) -> bool:
        """True for ``prompted_lesion_sweep``."""
        return self.mode == "prompted_lesion_sweep"

    @property
    def lesion_wise(self) -> bool:
        return self.mode in LESION_WISE_MODES


@dataclass(frozen=True)
class InteractionRow:
    """One logged step of a protocol: the protocol columns of ``interactions.csv``, in column order.

    Attributes:
        step: 1-based position of the row in the scan's log.
        phase: ``"interaction"``, ``"propagation"`` or ``"automatic"``.
        target_rank: prompted target ``1..m`` (lesion-wise modes); 0 for the whole ground truth (global modes,
            propagation and automatic rows).
        target_label: the target's label; equals ``target_rank``.
        target_volume_ml: volume of the target (the whole ground truth for rank 0), ml.
        interaction: 1-based interaction on the target; 0 on propagation and automatic rows.
        new_pos: the interaction's new positive clicks as ``"i j k"`` voxel indices, ``;``-joined; empty when none.
        new_neg: the same for the new negative clicks.
        n_pos_total: positive clicks so far on the target (on propagation rows: on the scan), count.
        n_neg_total: negative clicks so far, counted like ``n_pos_total``.
        click_strategy: the simulated user's strategy (``ClickConfig.strategy``); empty on rows without clicks.
        dice_target: Dice of the current target mask against the target, in [0, 1] (scan Dice on rank-0 rows).
        dice_scan: Dice of the current scan prediction against the whole ground truth, in [0, 1].
        elapsed_s: time spent in the model call of this step, s (0 when the model was not called).
        peak_mem_mb: peak memory during the call, MiB (:class:`StepMeter`).
    """

    step: int
    phase: str
    target_rank: int
    target_label: int
    target_volume_ml: float
    interaction: int
    new_pos: str
    new_neg: str
    n_pos_total: int
    n_neg_total: int
    click_strategy: str
    dice_target: float
    dice_scan: float
    elapsed_s: float
    peak_mem_mb: float

    @classmethod
    def whole_scan(cls, step: int, phase: str, volume_ml: float, n_pos_total: int, n_neg_total: int, score: float,
                   elapsed_s: float, peak_mem_mb: float) -> InteractionRow:
        """A row without new clicks on the whole scan (``propagation`` or ``automatic``): target rank 0,
        interaction 0, ``dice_target = dice_scan = score``."""
        return cls(step=step, phase=phase, target_rank=0, target_label=0, target_volume_ml=volume_ml, interaction=0,
                   new_pos="", new_neg="", n_pos_total=n_pos_total, n_neg_total=n_neg_total, click_strategy="",
                   dice_target=score, dice_scan=score, elapsed_s=elapsed_s, peak_mem_mb=peak_mem_mb)

    def as_row(self) -> dict[str, Any]:
        """``{column: value}`` for the CSV writer, in column order."""
        return asdict(self)


@dataclass
class CaseOutcome:
    """What a protocol produced for one scan.

    Attributes:
        prediction: bool ``(I, J, K)`` final mask (including propagation).
        prediction_before_propagation: bool ``(I, J, K)`` the union of the target masks alone.
        steps: logged steps (protocol columns of ``interactions.csv``), in order.
        n_interactions: interactions counted (also those without a new click).
        n_clicks: clicks sent to the model.
        scan_dice_curve: unfiltered scan Dice after each global interaction (after propagation); empty in other modes.
        model_time_s: total time spent inside the model's calls.
        max_slice_fraction: lesion-wise modes: the largest fraction of one coronal slice that a single lesion's mask
            covered after any interaction (a lesion mask that floods its slice shows here); 0 in global modes.
    """

    prediction: np.ndarray
    prediction_before_propagation: np.ndarray
    steps: list[InteractionRow] = field(default_factory=list)
    n_interactions: int = 0
    n_clicks: int = 0
    scan_dice_curve: list[float] = field(default_factory=list)
    model_time_s: float = 0.0
    max_slice_fraction: float = 0.0


def prompted_lesion_dice(steps: Sequence[InteractionRow]) -> float | None:
    """Mean over the prompted lesions of the Dice between each lesion's own mask after its last interaction and that
    lesion (``dice_target`` of its last ``interaction`` row); ``None`` without interaction rows.

    Unlike the scan Dice, a lesion mask that spills onto neighbouring lesions is not rewarded here.
    """
    last: dict[int, float] = {}
    for step in steps:
        if step.phase == "interaction" and step.target_rank > 0:
            last[step.target_rank] = step.dice_target
    return float(np.mean(list(last.values()))) if last else None


def slice_fraction(mask: np.ndarray, scan: Scan) -> float:
    """Largest fraction of one coronal slice covered by ``mask`` (bool ``(I, J, K)`` on ``scan``'s grid)."""
    canonical = scan.view.to_canonical(mask)
    height, width = canonical.shape[:2]
    return float(canonical.sum(axis=(0, 1)).max()) / float(height * width) if canonical.size else 0.0


class StepMeter:
    """Times one model call and reports the peak memory during it.

    Peak memory (MiB) is the CUDA peak allocated during the call when CUDA is in use in this process, otherwise the
    process peak resident set size so far (``ru_maxrss``; non-decreasing over a run).
    """

    def __call__(self, call: Callable[..., Any], *args: Any) -> tuple[Any, float, float]:
        """Run ``call(*args)``; return ``(result, elapsed_s, peak_mem_mb)``."""
        cuda = self._cuda()
        if cuda is not None:
            cuda.synchronize()
            cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        result = call(*args)
        if cuda is not None:
            cuda.synchronize()
        elapsed = time.perf_counter() - start
        return result, elapsed, self.peak_mb(cuda)

    @staticmethod
    def _cuda() -> Any | None:
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
            return torch.cuda
        return None

    def peak_mb(self, cuda: Any | None = None) -> float:
        """Current peak: CUDA peak allocated since the last reset, else the process peak RSS (MiB)."""
        cuda = cuda if cuda is not None else self._cuda()
        if cuda is not None:
            return float(cuda.max_memory_allocated()) / 2**20
        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024.0


def _click_text(clicks: list[Click], positive: bool) -> str:
    """``"i j k"`` of the new clicks of one polarity (several joined by ``;``), empty when none."""
    return ";".join(f"{c.i} {c.j} {c.k}" for c in clicks if c.positive == positive)


class _CaseProtocol:
    """One scan under one protocol; call :meth:`run` once."""

    def __init__(
        self,
        segmenter: InteractiveSegmenter,
        scan: Scan,
        gt: np.ndarray,
        plan: PromptPlan,
        protocol: ProtocolConfig,
        clicks: ClickConfig,
        *,
        seed: int,
        voxel_volume_ml: float,
        progress: bool,
        on_prompted: Callable[[int, np.ndarray], None] | None,
    ) -> None:
        self.model, self.scan, self.gt, self.plan = segmenter, scan, gt, plan
        self.on_prompted = on_prompted
        self.protocol, self.clicks, self.seed = protocol, clicks, seed
        self.voxel_volume_ml, self.progress = voxel_volume_ml, progress
        self.meter = StepMeter()
        empty = np.zeros(gt.shape, dtype=bool)
        self.out = CaseOutcome(prediction=empty, prediction_before_propagation=empty)
        self.n_pos_case = self.n_neg_case = 0

    def run(self) -> CaseOutcome:
        mode = self.protocol.mode
        if mode == "global_non_corrective" and self._use_automatic():
            self._automatic()
        else:
            if not self.model.interactive:
                raise InputError(f"model {self.model.name!r} is not interactive; run protocol=global_non_corrective")
            if self.protocol.lesion_wise:
                self._lesion_wise()
            else:
                self._global()
        return self.out

    # ---------------------------------------------------------------- model calls and logging
    def _call(self, method: Callable[..., Any], *args: Any) -> tuple[np.ndarray | None, float, float]:
        """Call a segmenter method, check its mask (shape, finite values) and return it as bool."""
        result, elapsed, peak = self.meter(method, *args)
        self.out.model_time_s += elapsed
        if result is None:
            return None, elapsed, peak
        mask = np.asarray(result)
        if mask.shape != self.gt.shape:
            raise InputError(f"{self.scan.case_id}: model {self.model.name!r} returned a prediction of shape "
                             f"{mask.shape}, expected {self.gt.shape}")
        if mask.dtype.kind == "f" and not np.isfinite(mask).all():
            raise InputError(f"{self.scan.case_id}: model {self.model.name!r} returned a corrupt prediction "
                             "(NaN or infinite values)")
        if mask.dtype.kind not in "biuf":
            raise InputError(f"{self.scan.case_id}: model {self.model.name!r} returned a prediction of dtype "
                             f"{mask.dtype}, expected bool")
        return mask.astype(bool, copy=False), elapsed, peak

    @property
    def _next_step(self) -> int:
        return len(self.out.steps) + 1

    def _interaction(
        self, rank: int, target: np.ndarray, current: np.ndarray, interaction: int, totals: list[int]
    ) -> tuple[np.ndarray, list[Click], float, float]:
        """Simulate clicks from ``(target, current)`` and send them; returns ``(mask, clicks, elapsed, peak)``.

        Without a new click the model is not called and ``current`` is returned. ``totals`` ``[pos, neg]`` of the
        target is updated in place.
        """
        new = simulate_clicks(
            target, current, self.scan.view, self.clicks,
            seed=self.seed, case_id=self.scan.case_id, target_rank=rank, interaction=interaction,
        )
        self.out.n_interactions += 1
        if not new:
            return current, new, 0.0, self.meter.peak_mb()
        n_pos = sum(c.positive for c in new)
        totals[0] += n_pos
        totals[1] += len(new) - n_pos
        self.n_pos_case += n_pos
        self.n_neg_case += len(new) - n_pos
        self.out.n_clicks += len(new)
        mask, elapsed, peak = self._call(self.model.add_clicks, rank, new)
        if mask is None:
            raise InputError(f"{self.scan.case_id}: model {self.model.name!r} returned no mask for its clicks")
        if rank > 0:
            self.out.max_slice_fraction = max(self.out.max_slice_fraction, slice_fraction(mask, self.scan))
        return mask, new, elapsed, peak

    def _log_interaction(
        self, rank: int, volume_ml: float, interaction: int, new: list[Click], totals: list[int],
        dice_target: float, dice_scan: float, elapsed: float, peak: float,
    ) -> None:
        self.out.steps.append(InteractionRow(
            step=self._next_step, phase="interaction", target_rank=rank, target_label=rank,
            target_volume_ml=volume_ml, interaction=interaction, new_pos=_click_text(new, True),
            new_neg=_click_text(new, False), n_pos_total=totals[0], n_neg_total=totals[1],
            click_strategy=self.clicks.strategy, dice_target=dice_target, dice_scan=dice_scan, elapsed_s=elapsed,
            peak_mem_mb=peak,
        ))

    def _propagate(self, union: np.ndarray) -> np.ndarray | None:
        """Call :meth:`propagate`; log a ``propagation`` row and return ``union | propagated`` (``None`` if none)."""
        propagated, elapsed, peak = self._call(self.model.propagate)
        if propagated is None:
            return None
        merged = union | propagated
        score = dice(merged, self.gt)
        self.out.steps.append(InteractionRow.whole_scan(
            self._next_step, "propagation", self._gt_volume_ml(), self.n_pos_case, self.n_neg_case, score, elapsed,
            peak,
        ))
        return merged

    def _gt_volume_ml(self) -> float:
        return float(self.gt.sum()) * self.voxel_volume_ml

    # ---------------------------------------------------------------- modes
    def _lesion_wise(self) -> None:
        protocol, plan = self.protocol, self.plan
        sweep = protocol.sweep
        budget = protocol.interactions_per_lesion
        union = np.zeros(self.gt.shape, dtype=bool)
        swept: np.ndarray | None = None
        ranks = tqdm(plan.ranks, desc=f"{self.scan.case_id} lesions", unit="lesion", leave=False,
                     disable=not self.progress)
        for rank in ranks:
            target = plan.mask(rank)
            volume_ml = float(plan.volumes_ml[rank - 1])
            current = np.zeros(self.gt.shape, dtype=bool)
            totals = [0, 0]
            for interaction in range(1, budget + 1):
                current, new, elapsed, peak = self._interaction(rank, target, current, interaction, totals)
                dice_target = dice(current, target)
                self._log_interaction(rank, volume_ml, interaction, new, totals, dice_target,
                                      dice(union | current, self.gt), elapsed, peak)
                if dice_target >= protocol.dsc_local_max:
                    break
            union |= current
            if sweep and self.model.propagates:
                swept = self._propagate(union)
            if sweep and self.on_prompted is not None:
                self.on_prompted(rank, swept if swept is not None else union)
        self.out.prediction_before_propagation = union
        self.out.prediction = union
        if not self.model.propagates:
            return
        if sweep:
            self.out.prediction = swept if swept is not None else union
        elif protocol.propagate_when_all_prompted or not plan.fewer_than_k:
            merged = self._propagate(union)
            self.out.prediction = merged if merged is not None else union

    def _global(self) -> None:
        protocol = self.protocol
        corrective = protocol.mode == "global_corrective"
        volume_ml = self._gt_volume_ml()
        current = np.zeros(self.gt.shape, dtype=bool)
        before = current
        totals = [0, 0]
        for interaction in range(1, protocol.max_interactions + 1):
            mask, new, elapsed, peak = self._interaction(0, self.gt, current, interaction, totals)
            if new:
                before = mask
                score = dice(mask, self.gt)
                self._log_interaction(0, volume_ml, interaction, new, totals, score, score, elapsed, peak)
                current = mask
                if self.model.propagates:
                    merged = self._propagate(mask)
                    current = merged if merged is not None else mask
            else:
                score = dice(current, self.gt)
                self._log_interaction(0, volume_ml, interaction, new, totals, score, score, elapsed, peak)
            self.out.scan_dice_curve.append(dice(current, self.gt))
            if corrective and self.out.scan_dice_curve[-1] >= protocol.stop_dice:
                break
        self.out.prediction_before_propagation = before
        self.out.prediction = current

    def _use_automatic(self) -> bool:
        use = self.protocol.automatic
        if use is None:
            use = not self.model.interactive
        if use and not getattr(self.model, "automatic_capable", False):
            raise InputError(f"model {self.model.name!r} has no automatic mode")
        return bool(use)

    def _automatic(self) -> None:
        mask, elapsed, peak = self._call(self.model.automatic)
        if mask is None:
            raise InputError(f"{self.scan.case_id}: model {self.model.name!r} returned no automatic prediction")
        score = dice(mask, self.gt)
        self.out.steps.append(InteractionRow.whole_scan(
            self._next_step, "automatic", self._gt_volume_ml(), 0, 0, score, elapsed, peak,
        ))
        self.out.n_interactions = 1
        self.out.prediction = self.out.prediction_before_propagation = mask


def run_protocol(
    segmenter: InteractiveSegmenter,
    scan: Scan,
    gt: np.ndarray,
    plan: PromptPlan,
    protocol: ProtocolConfig,
    clicks: ClickConfig,
    *,
    seed: int,
    voxel_volume_ml: float,
    progress: bool = True,
    on_prompted: Callable[[int, np.ndarray], None] | None = None,
) -> CaseOutcome:
    """Run ``protocol`` on one scan whose :meth:`start_scan` has already been called.

    Args:
        segmenter: the model adapter.
        scan: the scan (its ``case_id`` and view seed the clicks).
        gt: bool ``(I, J, K)`` ground truth (``label > 0``), original grid.
        plan: the prompted targets (:func:`~mois_sam2_nf.evaluation.targets.plan_targets`).
        protocol: the protocol settings.
        clicks: the click-simulator settings.
        seed: run seed (clicks are seeded per case, target and interaction).
        voxel_volume_ml: volume of one voxel in ml (for ``target_volume_ml``).
        progress: show a tqdm bar over the lesions.
        on_prompted: ``prompted_lesion_sweep`` only: called after each target ``k`` (and the propagation that
            follows it) as ``on_prompted(k, prediction)`` with the bool ``(I, J, K)`` scan prediction so far (the
            array may change after the call returns; copy it to keep it).
    """
    return _CaseProtocol(segmenter, scan, gt, plan, protocol, clicks, seed=seed, voxel_volume_ml=voxel_volume_ml,
                         progress=progress, on_prompted=on_prompted).run()
