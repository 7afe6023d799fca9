"""The region-growing baseline: growing from clicks, negative cuts, click histories, axis order, the adapter seam."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from evaluation_cases import COHORT, lesion_mask, make_cohort
from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.errors import InputError
from mois_sam2_nf.evaluation import runner
from mois_sam2_nf.segmenters import Click, InteractiveSegmenter, Scan, create_segmenter
from mois_sam2_nf.evaluation.metrics import dice
from mois_sam2_nf.models.region_growing.adapter import RegionGrowingSegmenter
from mois_sam2_nf.models.region_growing.grow import GrowParams, RegionGrower, _sitk_index, _to_sitk, voxel_spacing

SHAPE = (48, 40, 44)


def ellipsoid(shape: tuple[int, int, int], centre: tuple[float, float, float], radii_mm: tuple[float, float, float],
              spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> np.ndarray:
    """Bool mask of the voxels inside an axis-aligned ellipsoid (radii in mm along i, j, k)."""
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return sum((((g - c) * s) / r) ** 2 for g, c, s, r in zip(grids, centre, spacing, radii_mm)) <= 1.0


def noisy(bright: np.ndarray, seed: int = 0) -> np.ndarray:
    """int16 image: N(100, 20) background, +300 where ``bright``."""
    rng = np.random.default_rng(seed)
    return (rng.normal(100.0, 20.0, bright.shape) + 300.0 * bright).astype(np.int16)


def make_scan(image: np.ndarray, spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> Scan:
    affine = np.diag([*spacing, 1.0])
    return Scan("1_2020_P_0001_T2", image, affine, ScanView.from_affine(affine, image.shape))


def started(image: np.ndarray, spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
            **options: float) -> RegionGrowingSegmenter:
    segmenter = RegionGrowingSegmenter(**options)
    segmenter.start_scan(make_scan(image, spacing))
    return segmenter


# ------------------------------------------------------------------------------------------------ growing
def test_one_click_recovers_a_bright_ball_and_stays_inside() -> None:
    ball = ellipsoid(SHAPE, (20, 18, 24), (8.0, 8.0, 8.0))
    mask = started(noisy(ball)).add_clicks(1, [Click(22, 17, 25, True)])
    assert mask.shape == SHAPE and mask.dtype == bool
    assert dice(mask, ball) > 0.9
    assert not (mask & ~ball).any()


def test_click_near_the_rim_still_recovers_the_ball() -> None:
    ball = ellipsoid(SHAPE, (20, 18, 24), (8.0, 8.0, 8.0))
    mask = started(noisy(ball)).add_clicks(1, [Click(13, 18, 24, True)])  # 1 voxel inside the rim
    assert dice(mask, ball) > 0.9


def test_growth_stops_at_max_radius_in_mm_on_an_anisotropic_grid() -> None:
    spacing = (1.0, 2.0, 4.0)
    shape = (101, 31, 31)
    cross = np.zeros(shape, dtype=bool)
    cross[:, 14:17, 14:17] = True  # a long bright rod along i
    cross[48:53, 14:17, :] = True  # and one along k
    grower = RegionGrower(noisy(cross).astype(np.float32), spacing,
                          GrowParams(initial_radius_mm=4.0, max_radius_mm=20.0))
    mask = grower.segment([(50, 15, 15)], [])
    i_extent = np.nonzero(mask.any(axis=(1, 2)))[0]
    k_extent = np.nonzero(mask.any(axis=(0, 1)))[0]
    assert (i_extent.min(), i_extent.max()) == (30, 70)  # 20 mm / 1 mm either side
    assert (k_extent.min(), k_extent.max()) == (10, 20)  # 20 mm / 4 mm either side


def test_no_contrast_gives_the_clicked_voxel_alone() -> None:
    flat = np.full((20, 20, 20), 100, dtype=np.int16)
    mask = started(flat).add_clicks(1, [Click(3, 4, 5, True)])
    assert np.argwhere(mask).tolist() == [[3, 4, 5]]


# ------------------------------------------------------------------------------------------------ clicks
def test_click_outside_the_volume_is_an_input_error() -> None:
    segmenter = started(noisy(ellipsoid(SHAPE, (20, 18, 24), (8.0, 8.0, 8.0))))
    for click in (Click(48, 0, 0, True), Click(0, -1, 0, True), Click(0, 0, 44, False)):
        with pytest.raises(InputError, match="outside the volume"):
            segmenter.add_clicks(1, [click])
    with pytest.raises(InputError, match="outside the volume"):
        RegionGrower(np.zeros(SHAPE), (1.0, 1.0, 1.0), GrowParams()).segment([(0, 40, 0)], [])


def test_negative_click_cuts_off_a_leak() -> None:
    lesion = ellipsoid(SHAPE, (14, 20, 22), (7.0, 7.0, 7.0))
    leak = ellipsoid(SHAPE, (36, 20, 22), (6.0, 6.0, 6.0))
    bridge = np.zeros(SHAPE, dtype=bool)
    bridge[14:37, 19:22, 21:24] = True
    segmenter = started(noisy(lesion | leak | bridge))
    grown = segmenter.add_clicks(1, [Click(14, 20, 22, True)])
    assert (grown & leak).sum() == leak.sum()  # the region leaked over the bridge
    cut = segmenter.add_clicks(1, [Click(36, 20, 22, False)])
    assert not (cut & leak).any() and (cut & lesion).sum() == lesion.sum()
    assert dice(cut, lesion) > 0.9
    # a negative click outside the region changes nothing
    assert np.array_equal(segmenter.add_clicks(1, [Click(2, 2, 2, False)]), cut)


def test_corrective_click_on_a_second_blob_adds_it_to_the_same_lesion() -> None:
    first = ellipsoid(SHAPE, (12, 20, 12), (6.0, 6.0, 6.0))
    second = ellipsoid(SHAPE, (34, 20, 32), (5.0, 5.0, 5.0))
    segmenter = started(noisy(first | second))
    one = segmenter.add_clicks(3, [Click(12, 20, 12, True)])
    assert dice(one, first) > 0.9 and not (one & second).any()
    both = segmenter.add_clicks(3, [Click(34, 20, 32, True)])
    assert dice(both, first | second) > 0.9
    # histories are per lesion id: another lesion starts fresh, and a forgotten lesion too
    other = segmenter.add_clicks(4, [Click(34, 20, 32, True)])
    assert dice(other, second) > 0.9 and not (other & first).any()
    segmenter.forget_lesion(3)
    assert np.array_equal(segmenter.add_clicks(3, [Click(34, 20, 32, True)]), other)


def test_only_negative_clicks_give_an_empty_mask() -> None:
    segmenter = started(noisy(ellipsoid(SHAPE, (20, 18, 24), (8.0, 8.0, 8.0))))
    assert not segmenter.add_clicks(1, [Click(20, 18, 24, False)]).any()


# ------------------------------------------------------------------------------------------------ axis order
def test_sitk_conversion_reverses_axes_and_spacing() -> None:
    array = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    image = _to_sitk(array, (1.0, 2.0, 3.0))
    assert image.GetSize() == (6, 5, 4) and image.GetSpacing() == (3.0, 2.0, 1.0)
    assert image.GetPixel(_sitk_index((3, 1, 5))) == array[3, 1, 5]
    assert np.array_equal(sitk.GetArrayFromImage(image), array)


def test_non_cubic_anisotropic_volume_keeps_axis_order() -> None:
    spacing = (1.5, 6.0, 3.0)
    shape = (60, 14, 36)
    # physically a sphere of radius 12 mm: 8 x 2 x 4 voxels; off-centre so that a swapped axis misses it
    blob = ellipsoid(shape, (40, 4, 10), (12.0, 12.0, 12.0), spacing)
    affine = np.array([[0.0, 0, -3.0, 50], [1.5, 0, 0, -20], [0, 6.0, 0, 10], [0, 0, 0, 1]])  # permuted axes
    assert voxel_spacing(affine) == spacing
    segmenter = RegionGrowingSegmenter()
    segmenter.start_scan(Scan("1_2020_P_0002_T2", noisy(blob), affine, ScanView.from_affine(affine, shape)))
    mask = segmenter.add_clicks(1, [Click(40, 4, 10, True)])
    assert mask.shape == shape
    assert dice(mask, blob) > 0.9


# ------------------------------------------------------------------------------------------------ adapter seam
def test_adapter_is_registered_and_implements_the_protocol() -> None:
    segmenter = create_segmenter("region_growing", fraction=0.5)
    assert isinstance(segmenter, RegionGrowingSegmenter) and isinstance(segmenter, InteractiveSegmenter)
    assert segmenter.name == "region_growing" and segmenter.params.fraction == 0.5
    assert segmenter.interactive and not segmenter.automatic_capable and not segmenter.propagates
    segmenter.start_scan(make_scan(noisy(ellipsoid(SHAPE, (20, 18, 24), (8.0, 8.0, 8.0)))))
    assert segmenter.propagate() is None and segmenter.automatic() is None
    segmenter.end_scan()
    with pytest.raises(RuntimeError, match="start_scan"):
        segmenter.add_clicks(1, [Click(1, 1, 1, True)])


@pytest.mark.parametrize("options", [{"fraction": 0.0}, {"lesion_percentile": 101.0},
                                     {"initial_radius_mm": 30.0, "max_radius_mm": 20.0}, {"max_radius_mm": -1.0}])
def test_bad_options_are_input_errors(options: dict[str, float]) -> None:
    with pytest.raises(InputError, match="region_growing"):
        RegionGrowingSegmenter(**options)


def test_runner_on_box_lesions_gives_exact_prompted_lesions(tmp_path: Path) -> None:
    cohort = make_cohort(tmp_path / "raw")
    result = runner.evaluate([f"data.root={cohort}", f"results_dir={tmp_path / 'results'}", "data.splits_dir=none",
                              "progress=false", "model=region_growing", "protocol.num_lesions=2",
                              "metrics.min_volume_ml=0"])
    assert result.run_id.startswith("region_growing__lesion_wise_corrective__ts1__fold1__")
    metrics = pd.read_csv(result.run_dir / "case_metrics.csv", dtype={"case_id": str}).set_index("case_id")
    for case, indices in COHORT.items():
        assert metrics.loc[case, "scan_dice"] == pytest.approx(dice(lesion_mask(indices[:2]), lesion_mask(indices)))
        assert metrics.loc[case, "fp_any"] == 0


def test_runner_on_the_tiny_cohort(tiny_cohort: Path, tmp_path: Path) -> None:
    result = runner.evaluate([f"data.root={tiny_cohort}", f"results_dir={tmp_path / 'results'}",
                              "data.splits_dir=none", "progress=false", "model=region_growing",
                              "click=patch_dt_mm", "protocol.num_lesions=5"])
    metrics = pd.read_csv(result.run_dir / "case_metrics.csv")
    assert len(metrics) == 2 and (metrics["n_prompted"] > 0).all()
    assert metrics["f1_any"].mean() > 0.5 and metrics["scan_dice"].mean() > 0.7
