"""Prompt order (targets) and the interaction protocols, driven in memory with the oracle segmenters."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from evaluation_cases import AFFINE, SHAPE, VOXEL_ML, lesion_mask
from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.evaluation.clicks import ClickConfig
from mois_sam2_nf.segmenters import Scan, create_segmenter
from mois_sam2_nf.evaluation.metrics import dice
from mois_sam2_nf.evaluation.protocols import (
    CaseOutcome,
    InteractionRow,
    ProtocolConfig,
    prompted_lesion_dice,
    run_protocol,
)
from mois_sam2_nf.evaluation.results import IDENTIFIER_COLUMNS, INTERACTION_COLUMNS
from mois_sam2_nf.evaluation.targets import plan_targets

ALL = (0, 1, 2, 3)
VIEW = ScanView.from_affine(AFFINE, SHAPE)


def run(model: Any, protocol: ProtocolConfig, indices: tuple[int, ...] = ALL, seed: int = 0,
        label: np.ndarray | None = None, on_prompted: Any = None) -> CaseOutcome:
    label = lesion_mask(indices).astype(np.uint8) if label is None else label
    scan = Scan("1_2020_P_2001_T2", np.zeros(SHAPE, dtype=np.int16), AFFINE, VIEW, label)
    plan = plan_targets(label, VIEW, protocol.num_lesions, protocol.lesion_order, VOXEL_ML)
    model.start_scan(scan)
    try:
        return run_protocol(model, scan, label > 0, plan, protocol, ClickConfig(), seed=seed,
                            voxel_volume_ml=VOXEL_ML, progress=False, on_prompted=on_prompted)
    finally:
        model.end_scan()


def phases(outcome: CaseOutcome) -> list[str]:
    return [step.phase for step in outcome.steps]


class CountingOracle:
    """Wraps a segmenter and counts add_clicks calls."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.calls = inner, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def add_clicks(self, lesion_id: int, clicks: list) -> np.ndarray:
        self.calls += 1
        return self.inner.add_clicks(lesion_id, clicks)


# -------------------------------------------------------------------------------------------- targets (lesion order)
def test_size_desc_visits_largest_first_and_keeps_k() -> None:
    label = lesion_mask((3, 1, 0, 2)).astype(np.uint8)
    plan = plan_targets(label, VIEW, 3, "size_desc", VOXEL_ML)
    assert plan.n_lesions == 4 and plan.n_targets == 3 and not plan.fewer_than_k
    np.testing.assert_allclose(plan.volumes_ml, np.array([392, 216, 27]) * VOXEL_ML)
    for rank, index in zip(plan.ranks, (0, 1, 2)):
        np.testing.assert_array_equal(plan.mask(rank), lesion_mask((index,)))
    assert plan_targets(label, VIEW, 20, "size_desc", VOXEL_ML).fewer_than_k


def test_label_order_splits_26_components_in_6_connectivity_raster_order() -> None:
    label = np.zeros(SHAPE, dtype=np.uint8)
    label[20, 5, 20] = label[21, 6, 21] = 1  # one 26-component of 2 voxels that is two 6-components
    label[2:5, 2:5, 2:5] = 1  # 27 voxels
    label[2, 2, 30] = 1  # 1 voxel, a third 26-component (dropped with K = 2)
    size_desc = plan_targets(label, VIEW, 2, "size_desc", VOXEL_ML)
    assert size_desc.n_targets == 2 and size_desc.mask(2).sum() == 2
    ordered = plan_targets(label, VIEW, 2, "label_order", VOXEL_ML)
    canonical = VIEW.to_canonical(ordered.rank_map)
    firsts = [np.flatnonzero(canonical.ravel() == r)[0] for r in (1, 2)]
    assert ordered.n_targets == 2 and firsts[0] < firsts[1]  # ids follow canonical raster order
    assert sorted(ordered.mask(r).sum() for r in (1, 2)) in ([1, 1], [1, 27])
    assert not (ordered.rank_map[2, 2, 30] or (ordered.rank_map > 2).any())
    with pytest.raises(InputError, match="lesion_order"):
        plan_targets(label, VIEW, 2, "random", VOXEL_ML)


# ------------------------------------------------------------------------------------------------ lesion-wise
def test_oracle_lesion_wise_corrective_reaches_dice_one_per_prompted_lesion() -> None:
    outcome = run(create_segmenter("oracle"), ProtocolConfig(num_lesions=2))
    rows = outcome.steps
    assert [r.target_rank for r in rows] == [1, 2] and all(r.dice_target == 1.0 for r in rows)
    assert all(r.new_pos and not r.new_neg and r.click_strategy == "patch_dt" for r in rows)
    np.testing.assert_array_equal(outcome.prediction, lesion_mask((0, 1)))
    assert rows[-1].dice_scan == pytest.approx(dice(lesion_mask((0, 1)), lesion_mask(ALL)))
    assert [r.step for r in rows] == [1, 2] and outcome.n_interactions == 2 and outcome.n_clicks == 2


def test_lesion_wise_runs_record_the_largest_slice_fraction_of_a_lesion_mask() -> None:
    outcome = run(create_segmenter("oracle"), ProtocolConfig(num_lesions=2))
    # coronal slices of this LPS grid are the (i, k) planes (j runs anterior-posterior): 24 x 36 voxels; the largest
    # prompted lesion covers 7 x 7 of them
    assert VIEW.to_canonical(np.zeros(SHAPE))[:, :, 0].size == 24 * 36
    assert outcome.max_slice_fraction == pytest.approx(49 / (24 * 36))
    assert run(create_segmenter("oracle"), ProtocolConfig(mode="global_corrective")).max_slice_fraction == 0.0


def test_prompted_lesion_dice_scores_each_lesion_own_mask_after_its_last_interaction() -> None:
    assert prompted_lesion_dice(run(create_segmenter("oracle"), ProtocolConfig(num_lesions=2)).steps) == 1.0
    assert prompted_lesion_dice(run(create_segmenter("oracle"), ProtocolConfig(mode="global_corrective")).steps) is None
    row = InteractionRow(
        step=1, phase="interaction", target_rank=1, target_label=1, target_volume_ml=1.0, interaction=1, new_pos="",
        new_neg="", n_pos_total=1, n_neg_total=0, click_strategy="center", dice_target=0.2, dice_scan=0.9,
        elapsed_s=0.0, peak_mem_mb=0.0,
    )
    steps = [row, replace(row, step=2, interaction=2, dice_target=0.6), replace(row, step=3, target_rank=2,
                                                                               target_label=2, dice_target=1.0),
             replace(row, step=4, phase="propagation", target_rank=0, dice_target=0.1)]
    # lesion 1 counts with its last interaction (0.6), not its first; propagation rows do not count
    assert prompted_lesion_dice(steps) == pytest.approx(0.8)


def test_interaction_without_click_is_logged_without_calling_model() -> None:
    model = CountingOracle(create_segmenter("oracle"))
    outcome = run(model, ProtocolConfig(num_lesions=2, dsc_local_max=1.5))
    assert model.calls == 2 and outcome.n_interactions == 6 and len(outcome.steps) == 6
    idle = [r for r in outcome.steps if r.interaction > 1]
    assert all(r.new_pos == r.new_neg == "" and r.dice_target == 1.0 for r in idle)
    assert [r.n_pos_total for r in outcome.steps] == [1, 1, 1, 1, 1, 1]


def test_non_corrective_gives_one_interaction_per_lesion() -> None:
    outcome = run(create_segmenter("imperfect_oracle"),
                  ProtocolConfig(mode="lesion_wise_non_corrective", interactions_per_lesion=1))
    assert [r.interaction for r in outcome.steps] == [1, 1, 1, 1]
    # rank 1 eroded (150 of 392) + cube 8: Dice 300 / 550; rank 3 is missed: only the cube
    assert outcome.steps[0].dice_target == pytest.approx(300 / 550)
    assert outcome.steps[2].dice_target == 0.0
    with pytest.raises(InputError, match="contradicts"):
        ProtocolConfig(mode="lesion_wise_non_corrective", interactions_per_lesion=3)


def test_corrective_negative_click_removes_false_positive() -> None:
    outcome = run(create_segmenter("imperfect_oracle"), ProtocolConfig(num_lesions=1))
    first, second = outcome.steps[:2]
    assert first.new_neg == "" and second.new_neg != ""  # the only FP of rank 1 is the cube
    assert second.dice_target == pytest.approx(300 / 542) and second.n_neg_total == 1


@pytest.mark.parametrize("when_all_prompted, k, expected",
                         [(True, 20, 1), (False, 20, 0), (False, 4, 1), (False, 2, 1)])
def test_propagation_rule(when_all_prompted: bool, k: int, expected: int) -> None:
    model = create_segmenter("imperfect_oracle", propagates=True)
    outcome = run(model, ProtocolConfig(num_lesions=k, propagate_when_all_prompted=when_all_prompted))
    assert phases(outcome).count("propagation") == expected
    if expected:
        assert phases(outcome)[-1] == "propagation"
        assert outcome.steps[-1].dice_scan == pytest.approx(dice(outcome.prediction, lesion_mask(ALL)))
    else:
        np.testing.assert_array_equal(outcome.prediction, outcome.prediction_before_propagation)


def test_propagation_adds_unprompted_lesions() -> None:
    segmenter = create_segmenter("imperfect_oracle", propagates=True, fp_edge=0, margin=0)
    outcome = run(segmenter, ProtocolConfig(num_lesions=1))
    np.testing.assert_array_equal(outcome.prediction_before_propagation, lesion_mask((0,)))
    np.testing.assert_array_equal(outcome.prediction, lesion_mask((0, 1, 3)))  # size rank 3 is missed


def test_prompted_lesion_sweep_propagates_after_every_lesion() -> None:
    model = create_segmenter("imperfect_oracle", propagates=True, fp_edge=0, margin=0, miss_every=0)
    outcome = run(model, ProtocolConfig(mode="prompted_lesion_sweep"))
    rows = outcome.steps
    propagation = [i for i, r in enumerate(rows) if r.phase == "propagation"]
    assert len(propagation) == 4
    assert [max(r.target_rank for r in rows[:i]) for i in propagation] == [1, 2, 3, 4]
    assert all(rows[i].dice_scan == 1.0 for i in propagation)  # exact oracle + exact propagation
    assert [r.dice_scan for r in rows if r.phase == "interaction"] == pytest.approx(
        [dice(lesion_mask(ALL[:k]), lesion_mask(ALL)) for k in (1, 2, 3, 4)])


@pytest.mark.parametrize("propagates", [False, True])
def test_prompted_lesion_sweep_hands_over_the_prediction_after_every_lesion(propagates: bool) -> None:
    model = create_segmenter("imperfect_oracle", propagates=propagates, fp_edge=0, margin=0, miss_every=0)
    seen: list[tuple[int, np.ndarray]] = []
    outcome = run(model, ProtocolConfig(mode="prompted_lesion_sweep", num_lesions=3),
                  on_prompted=lambda k, prediction: seen.append((k, prediction.copy())))
    assert [k for k, _ in seen] == [1, 2, 3]
    for k, prediction in seen:
        # exact propagation adds every untouched lesion; without it the prediction is the first k lesions
        np.testing.assert_array_equal(prediction, lesion_mask(ALL if propagates else ALL[:k]))
    np.testing.assert_array_equal(seen[-1][1], outcome.prediction)
    other: list[int] = []
    run(model, ProtocolConfig(num_lesions=3), on_prompted=lambda k, prediction: other.append(k))
    assert other == []  # only the sweep reports


# ------------------------------------------------------------------------------------------------ global modes
def test_global_corrective_stops_at_stop_dice() -> None:
    outcome = run(create_segmenter("oracle"), ProtocolConfig(mode="global_corrective"))
    curve = outcome.scan_dice_curve
    assert all(r.target_rank == 0 and r.phase == "interaction" for r in outcome.steps)
    assert curve[-1] >= 0.8 and all(d < 0.8 for d in curve[:-1])
    assert len(outcome.steps) == len(curve) == outcome.n_interactions


def test_global_corrective_stops_at_budget() -> None:
    outcome = run(create_segmenter("oracle"), ProtocolConfig(mode="global_corrective", max_interactions=1))
    assert outcome.n_interactions == 1 and outcome.scan_dice_curve[0] < 0.8


def test_global_corrective_propagates_after_every_interaction() -> None:
    model = create_segmenter("imperfect_oracle", propagates=True, fp_edge=0, margin=0, miss_every=0)
    outcome = run(model, ProtocolConfig(mode="global_corrective"))
    assert phases(outcome) == ["interaction", "propagation"] and outcome.scan_dice_curve == [1.0]


def test_global_non_corrective_interactive_and_automatic() -> None:
    protocol = ProtocolConfig(mode="global_non_corrective", max_interactions=1)
    interactive = run(create_segmenter("oracle"), protocol)
    assert phases(interactive) == ["interaction"] and interactive.n_interactions == 1
    automatic = run(create_segmenter("oracle", automatic=True),
                    ProtocolConfig(mode="global_non_corrective", max_interactions=1, automatic=True))
    assert phases(automatic) == ["automatic"] and automatic.steps[0].dice_scan == 1.0
    assert automatic.n_clicks == 0 and automatic.steps[0].new_pos == ""
    with pytest.raises(InputError, match="no automatic mode"):
        run(create_segmenter("oracle"), ProtocolConfig(mode="global_non_corrective", max_interactions=1,
                                                       automatic=True))


def test_interaction_rows_hold_the_protocol_columns_in_csv_order() -> None:
    outcome = run(create_segmenter("oracle"), ProtocolConfig(num_lesions=2))
    protocol_columns = INTERACTION_COLUMNS[len(IDENTIFIER_COLUMNS):]
    assert all(list(step.as_row()) == list(protocol_columns) for step in outcome.steps)
    row = InteractionRow.whole_scan(3, "propagation", 1.5, 2, 1, 0.75, 0.1, 8.0).as_row()
    assert row == {"step": 3, "phase": "propagation", "target_rank": 0, "target_label": 0, "target_volume_ml": 1.5,
                   "interaction": 0, "new_pos": "", "new_neg": "", "n_pos_total": 2, "n_neg_total": 1,
                   "click_strategy": "", "dice_target": 0.75, "dice_scan": 0.75, "elapsed_s": 0.1, "peak_mem_mb": 8.0}


def test_automatic_only_model_is_used_automatically_and_refused_elsewhere() -> None:
    model = create_segmenter("oracle", automatic=True)
    model.interactive = False
    outcome = run(model, ProtocolConfig(mode="global_non_corrective", max_interactions=1))
    assert phases(outcome) == ["automatic"]
    with pytest.raises(InputError, match="not interactive"):
        run(model, ProtocolConfig())


def test_bad_model_output_is_one_clear_error() -> None:
    class Broken(CountingOracle):
        def add_clicks(self, lesion_id: int, clicks: list) -> np.ndarray:
            return np.full(SHAPE, np.nan)

    with pytest.raises(InputError, match="corrupt prediction"):
        run(Broken(create_segmenter("oracle")), ProtocolConfig())

    class WrongShape(CountingOracle):
        def add_clicks(self, lesion_id: int, clicks: list) -> np.ndarray:
            return np.zeros((2, 2, 2), dtype=bool)

    with pytest.raises(InputError, match="shape"):
        run(WrongShape(create_segmenter("oracle")), ProtocolConfig())
