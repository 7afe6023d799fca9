"""Benchmark of the SAM2-family volume predictor: interactive latency, memory, and encode-once vs naive.

Parts (``--parts``, default ``demo full``; ``--memory`` runs alone, since peak RSS is per process):

- ``demo``: the shipped demo MOIS-SAM2 weights on demo test scans (``--demo-set``, read-only), the evaluation's
  lesion-wise corrective protocol (simulated clicks, propagation). The exact path (every shortcut off, evaluation
  default) records its clicks; the interactive path (``models/interactive.yaml``) replays the same clicks. Per-click
  latency (median, p95) of both, Dice of every returned mask and of each scan's final prediction against the exact
  path, and the scan Dice of both against the ground truth.
- ``full``: random-weight Hiera-T (``--config``, ``--image-size``) on a full-size synthetic scan (``--latency-shape``,
  2900 x 800 x 31 = the ``full`` preset), the lesion pattern below; exact vs interactive path with the same clicks.
- ``naive``: the encode-once predictor vs the naive path that re-encodes frames on every pass (as plain sam2), masks
  compared voxel by voxel (slow: minutes of re-encoding).
- ``--memory``: MOIS-SAM2 B+ at 1024 px (random weights) on the full-size scan with the interactive settings and the
  cache dtype of ``--memory-cache-dtype``; every frame encoded, then one lesion clicked; peak RSS of the process.

The exact path runs on ``--threads`` torch threads (1 = the evaluation's ``make demo`` setting); the interactive path
on the YAML's ``threads`` (every core). The last line of stdout is one JSON object; see :func:`main` for its keys.

Protocol of the synthetic parts (lesion-wise corrective pattern; docs/evaluation_protocol.md, Lesion-wise modes): for
each of ``--lesions`` synthetic lesions, ``--interactions`` interactions (positive centre click, negative click beside
the lesion, positive click on the next frame); every interaction resends all clicks and propagates forward and in
reverse; MOIS-SAM2 then runs one semantic propagation pass. Both paths use the same model (random weights), volume and
clicks in the same run; masks are compared voxel by voxel.

The ``naive`` part reports ``speedup``, ``masks_identical``, ``encode_s_per_frame``, ``track_s_per_step`` and
``speedup_bound_exact`` = 1 + naive encodes x encode / (steps x track): the speed-up of a predictor that encoded
nothing at all but ran the same tracking steps -- the ceiling of any exact predictor, since skipping tracking steps
changes the masks.

Example (quick): ``python benchmarks/bench_volume_predictor.py --parts demo full naive --demo-cases 1
--demo-lesions 2 --image-size 128 --shape 290 80 10 --lesions 3 --latency-shape 580 160 10 --latency-lesions 1``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mois_sam2_nf.data.io import load_label, load_nifti
from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.evaluation.clicks import ClickConfig
from mois_sam2_nf.segmenters import (
    Click,
    InteractiveSegmenter,
    Scan,
    create_segmenter,
)
from mois_sam2_nf.evaluation.protocols import ProtocolConfig
from mois_sam2_nf.evaluation.protocols import run_protocol as run_evaluation_protocol
from mois_sam2_nf.evaluation.targets import plan_targets
from mois_sam2_nf.models.interactive import apply_threads, interactive_settings
from mois_sam2_nf.models.sam2.volume_predictor import VolumeInferenceMixin
from mois_sam2_nf.models.session import ScanSession
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
DEMO_WEIGHTS = REPO / "model_weights" / "demo" / "mois_sam2_demo.pt"
DEMO_ROOT = REPO / "data" / "demo" / "raw"
PARTS = ("demo", "full", "naive")
#: shortcuts the demo part replays one at a time with ``--ablate`` (the YAML's value when it switches one on)
ABLATIONS: dict[str, Any] = {"early_stop_k": 2, "correction_reuse_k": 2, "cache_dtype": "bf16", "precision": "bf16"}

TARGETS = {
    "sam2": ("mois_sam2_nf.models.sam2", "build_sam2_model",
             "mois_sam2_nf.models.sam2.volume_predictor.SAM2VolumePredictor"),
    "mois_sam2": ("mois_sam2_nf.models.mois_sam2", "build_mois_sam2",
                  "mois_sam2_nf.models.mois_sam2.predictor.MOISSAM2Predictor"),
}
#: affine whose voxel axes already are the canonical (I, L, A) axes
CANONICAL_AFFINE = np.array([[0, -1, 0, 0], [0, 0, 1, 0], [-1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)

Lesion = tuple[int, int, int, int]  # centre row, col, frame; in-plane radius


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=["demo", "full"])
    parser.add_argument("--memory", action="store_true", help="only the B+ 1024 px peak-RSS measurement")
    parser.add_argument("--memory-cache-dtype", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--memory-config", default="mois_sam2.1_hiera_b+")
    parser.add_argument("--memory-image-size", type=int, default=None, help="override the memory model's image_size")
    parser.add_argument("--demo-set", default="imagesTs_1", help="demo test-set folder (data/demo/raw/<set>)")
    parser.add_argument("--demo-cases", type=int, default=3, help="scans of the demo set (sorted)")
    parser.add_argument("--demo-lesions", type=int, default=20, help="prompted lesions per demo scan (protocol K)")
    parser.add_argument("--ablate", action="store_true", help="demo part: also replay each shortcut alone")
    parser.add_argument("--speed-override", action="append", default=[], metavar="KEY=VALUE",
                        help="override models/interactive.yaml, e.g. options.correction_reuse_k=null (repeatable)")
    parser.add_argument("--model", choices=sorted(TARGETS), default="mois_sam2")
    parser.add_argument("--config", default=None, help="config name or YAML (default: <model>.1_hiera_t)")
    parser.add_argument("--image-size", type=int, default=256,
                        help="image_size of the random-weight model of the full and naive parts (0 = the config's)")
    parser.add_argument("--shape", type=int, nargs=3, default=(1160, 320, 20), metavar=("H", "W", "F"),
                        help="canonical size of the comparison scan (demo preset)")
    parser.add_argument("--lesions", type=int, default=20)
    parser.add_argument("--interactions", type=int, default=3, choices=(1, 2, 3))
    parser.add_argument("--latency-shape", type=int, nargs=3, default=(2900, 800, 31), metavar=("H", "W", "F"),
                        help="canonical size of the latency/memory scan (full preset)")
    parser.add_argument("--latency-lesions", type=int, default=3, help="lesions on the full-size scan")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the exact and naive paths")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def build_predictor(model: str, config: str | None, image_size: int | None,
                    device: str = "cpu") -> VolumeInferenceMixin:
    """Random-weight predictor on ``device`` (the object-score head is biased so objects are tracked, not dropped)."""
    import importlib

    module, builder, target = TARGETS[model]
    overrides = [f"++model.image_size={image_size}"] if image_size else []
    name = config or ("mois_sam2.1_hiera_t" if model == "mois_sam2" else "sam2.1_hiera_t")
    predictor = getattr(importlib.import_module(module), builder)(name, None, device=device, target=target,
                                                                   overrides=overrides)
    with torch.no_grad():
        predictor.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.add_(2.0)
    return predictor


def synthetic_scan(shape: tuple[int, int, int], n_lesions: int, rng: np.random.Generator) -> tuple[Scan, list[Lesion]]:
    """Canonical-oriented int16 scan with dim noise and ``n_lesions`` bright ellipsoids (and their centres)."""
    height, width, frames = shape
    image = (rng.random(shape, dtype=np.float32) * 200 + 100).astype(np.int16)
    rows, cols = np.ogrid[:height, :width]
    lesions: list[Lesion] = []
    for _ in range(n_lesions):
        radius = int(rng.integers(max(2, width // 40), max(3, width // 12)))
        row = int(rng.integers(radius, height - radius))
        col = int(rng.integers(radius, width - radius))
        frame = int(rng.integers(0, frames))
        for f in range(max(0, frame - 1), min(frames, frame + 2)):
            image[:, :, f][(rows - row) ** 2 + (cols - col) ** 2 <= radius**2] = 1000
        lesions.append((row, col, frame, radius))
    view = ScanView.from_affine(CANONICAL_AFFINE, shape)
    return Scan("bench", image, CANONICAL_AFFINE, view), lesions


def interaction_clicks(lesion: Lesion, shape: tuple[int, int, int], interaction: int) -> list[Click]:
    """Clicks of one interaction (canonical = original grid here): centre +, beside -, next frame +."""
    row, col, frame, radius = lesion
    height, width, frames = shape
    if interaction == 0:
        return [Click(row, col, frame, True)]
    if interaction == 1:
        return [Click(row, min(width - 1, col + radius + 3), frame, False)]
    return [Click(row, col, min(frames - 1, frame + 1), True)]


def run_protocol(session: ScanSession, lesions: list[Lesion], interactions: int,
                 on_click: Callable[[float], None] | None = None) -> list[np.ndarray]:
    """Lesion-wise corrective pattern; returns every returned mask (and the propagation result for MOIS-SAM2)."""
    masks: list[np.ndarray] = []
    union = np.zeros(session.shape, dtype=bool)
    for lesion_id, lesion in enumerate(tqdm(lesions, desc="lesions", leave=False), start=1):
        history: list[Click] = []
        for t in range(interactions):
            history += interaction_clicks(lesion, session.shape, t)
            start = time.perf_counter()
            mask = session.segment_lesion(lesion_id, history)
            if on_click is not None:
                on_click(time.perf_counter() - start)
            masks.append(mask)
        union |= masks[-1]
    if hasattr(session.predictor, "propagate_exemplars"):
        masks.append(session.propagate(union))
    return masks


def timed(function: Callable[[], list[np.ndarray]]) -> tuple[list[np.ndarray], float]:
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def encode_seconds(predictor: VolumeInferenceMixin, session: ScanSession, repeats: int = 3) -> float:
    """Median wall time of ``forward_image`` on one frame."""
    image = session.state["images"][0:1].float()
    times = []
    with torch.inference_mode(), session.autocast():
        for _ in range(repeats):
            start = time.perf_counter()
            predictor.forward_image(image)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two bool masks (1.0 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def latency_stats(prefix: str, seconds: Sequence[float]) -> dict[str, float]:
    """``{prefix}_click_median_s``, ``{prefix}_click_p95_s`` of per-click wall times."""
    return {f"{prefix}_click_median_s": round(statistics.median(seconds), 3),
            f"{prefix}_click_p95_s": round(float(np.percentile(seconds, 95)), 3)}


def agreement(prefix: str, exact: Sequence[np.ndarray], fast: Sequence[np.ndarray]) -> dict[str, Any]:
    """Dice of each fast mask against the exact mask of the same click (mean, min, count)."""
    dices = [dice(a, b) for a, b in zip(exact, fast, strict=True)]
    return {f"{prefix}_dice_vs_exact_mean": round(float(np.mean(dices)), 4),
            f"{prefix}_dice_vs_exact_min": round(float(np.min(dices)), 4), f"{prefix}_masks": len(dices),
            f"{prefix}_masks_identical": sum(bool(np.array_equal(a, b)) for a, b in zip(exact, fast))}


class ClickRecorder:
    """An :class:`InteractiveSegmenter` wrapper that times every ``add_clicks`` and keeps its clicks and mask.

    Attributes:
        calls: ``(lesion id, clicks)`` of every ``add_clicks`` call, in order.
        masks: the returned bool ``(I, J, K)`` masks, in order.
        seconds: wall time of each call.
    """

    def __init__(self, segmenter: InteractiveSegmenter) -> None:
        self.segmenter = segmenter
        self.calls: list[tuple[int, list[Click]]] = []
        self.masks: list[np.ndarray] = []
        self.seconds: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.segmenter, name)

    def add_clicks(self, lesion_id: int, clicks: list[Click]) -> np.ndarray:
        start = time.perf_counter()
        mask = self.segmenter.add_clicks(lesion_id, clicks)
        self.seconds.append(time.perf_counter() - start)
        self.calls.append((lesion_id, list(clicks)))
        self.masks.append(np.asarray(mask, dtype=bool).copy())
        return mask


@dataclass
class DemoRun:
    """One demo scan under the lesion-wise corrective protocol: the recorded clicks/masks, the protocol outcome
    (final prediction with propagation) and the ground truth, all on the original grid."""

    scan: Scan
    recorder: ClickRecorder
    prediction: np.ndarray
    truth: np.ndarray


def demo_protocol(segmenter: InteractiveSegmenter, image_path: Path, num_lesions: int, seed: int) -> DemoRun:
    """Run the evaluation's lesion-wise corrective protocol (simulated clicks with the reference's physical patch,
    as ``make demo``) on one demo scan, timing every click."""
    image = load_nifti(image_path)
    label_dir = image_path.parent.parent / (image_path.parent.name.replace("images", "labels") + "_instance")
    label = load_label(label_dir / image_path.name, image=image).array
    view = ScanView.from_affine(image.affine, image.array.shape)
    scan = Scan(image_path.name.removesuffix(".nii.gz"), image.array, image.affine, view, label)
    voxel_ml = image.voxel_volume_mm3 / 1000.0
    protocol = ProtocolConfig(num_lesions=num_lesions)
    clicks = ClickConfig(strategy="patch_dt", patch_size_mm=(320.0, 320.0, 124.8))
    plan = plan_targets(label, view, protocol.num_lesions, protocol.lesion_order, voxel_ml)
    recorder = ClickRecorder(segmenter)
    recorder.start_scan(scan)
    outcome = run_evaluation_protocol(recorder, scan, label > 0, plan, protocol, clicks, seed=seed,
                                      voxel_volume_ml=voxel_ml, progress=False)
    recorder.end_scan()
    return DemoRun(scan, recorder, outcome.prediction, label > 0)


def replay(segmenter: InteractiveSegmenter, run: DemoRun) -> tuple[ClickRecorder, np.ndarray]:
    """Replay the clicks of ``run`` on ``segmenter`` (same lesions, same interactions), then propagate once.

    Returns the recorder (times, masks) and the final prediction: the union of each lesion's last mask and the
    propagation result.
    """
    recorder = ClickRecorder(segmenter)
    recorder.start_scan(run.scan)
    for lesion_id, lesion_clicks in run.recorder.calls:
        recorder.add_clicks(lesion_id, lesion_clicks)
    last = {lesion: mask for (lesion, _), mask in zip(recorder.calls, recorder.masks)}
    prediction = np.logical_or.reduce([*last.values(), np.zeros(run.truth.shape, dtype=bool)])
    propagated = segmenter.propagate() if getattr(segmenter, "propagates", False) else None
    recorder.end_scan()
    return recorder, prediction if propagated is None else prediction | np.asarray(propagated, dtype=bool)


def demo_part(args: argparse.Namespace, fast_options: dict[str, Any], fast_threads: int | None) -> dict[str, Any]:
    """Demo weights on demo scans: the lesion-wise corrective protocol on the exact path, replayed on the fast path
    (and, with ``--ablate``, on each shortcut alone)."""
    image_paths = sorted((DEMO_ROOT / args.demo_set).glob("*.nii.gz"))[: args.demo_cases]
    variants = {"fast": fast_options}
    if args.ablate:
        variants |= {f"only_{key}": {key: fast_options.get(key) if fast_options.get(key) not in (None, "fp32")
                                     else value} for key, value in ABLATIONS.items()}
    exact_model = create_segmenter("mois_sam2", checkpoint=str(DEMO_WEIGHTS))
    models = {name: create_segmenter("mois_sam2", checkpoint=str(DEMO_WEIGHTS), **options)
              for name, options in variants.items()}
    runs: list[DemoRun] = []
    replays: dict[str, list[tuple[ClickRecorder, np.ndarray]]] = {name: [] for name in variants}
    for path in tqdm(image_paths, desc="demo scans", leave=False):
        torch.set_num_threads(args.threads)
        runs.append(demo_protocol(exact_model, path, args.demo_lesions, args.seed))
        apply_threads(fast_threads)
        for name, model in models.items():
            replays[name].append(replay(model, runs[-1]))
    result: dict[str, Any] = {
        "demo_set": args.demo_set, "demo_scans": len(image_paths), "demo_lesions_per_scan": args.demo_lesions,
        **latency_stats("demo_exact", [t for run in runs for t in run.recorder.seconds]),
        "demo_scan_dice_exact": round(float(np.mean([dice(run.truth, run.prediction) for run in runs])), 4),
    }
    for name, done in replays.items():
        prefix = "demo" if name == "fast" else f"demo_{name}"
        result |= {
            **latency_stats(f"{prefix}_fast" if name == "fast" else prefix,
                            [t for recorder, _ in done for t in recorder.seconds]),
            **agreement(prefix, [m for run in runs for m in run.recorder.masks],
                        [m for recorder, _ in done for m in recorder.masks]),
            f"{prefix}_final_dice_vs_exact_mean": round(float(np.mean(
                [dice(run.prediction, final) for run, (_, final) in zip(runs, done)])), 4),
            f"{prefix}_scan_dice": round(float(np.mean([dice(run.truth, final)
                                                        for run, (_, final) in zip(runs, done)])), 4),
        }
    return result


def lesion_clicks_part(predictor: VolumeInferenceMixin, scan: Scan, lesions: list[Lesion], interactions: int,
                       options: dict[str, Any], threads: int | None) -> tuple[list[np.ndarray], list[float], float]:
    """One session with ``options`` on ``threads``: returned masks, per-click seconds and the cache size (GB)."""
    apply_threads(threads)
    seconds: list[float] = []
    session_options = {key: value for key, value in options.items() if key != "precision"}
    session = ScanSession(predictor, scan, precision=options.get("precision", "fp32"), **session_options)
    masks = run_protocol(session, lesions, interactions, on_click=seconds.append)
    cache_gb = session.state["volume"].cache.nbytes / 1e9
    session.close()
    return masks, seconds, cache_gb


def full_part(args: argparse.Namespace, fast_options: dict[str, Any], fast_threads: int | None,
              rng: np.random.Generator) -> dict[str, Any]:
    """Random-weight model on a full-size synthetic scan: exact vs fast path, same clicks."""
    predictor = build_predictor(args.model, args.config, args.image_size)
    scan, lesions = synthetic_scan(tuple(args.latency_shape), args.latency_lesions, rng)
    exact, exact_s, cache_gb = lesion_clicks_part(predictor, scan, lesions, args.interactions, {}, args.threads)
    fast, fast_s, _ = lesion_clicks_part(predictor, scan, lesions, args.interactions, fast_options, fast_threads)
    return {
        "full_config": args.config or f"{args.model}.1_hiera_t", "full_image_size": int(predictor.image_size),
        "latency_shape": list(args.latency_shape), "latency_lesions": args.latency_lesions,
        **latency_stats("full_exact", exact_s), **latency_stats("full_fast", fast_s),
        **agreement("full", exact, fast), "full_cache_gb": round(cache_gb, 3),
    }


def naive_part(args: argparse.Namespace, rng: np.random.Generator) -> dict[str, Any]:
    """Encode-once vs naive re-encoding (both exact) on the comparison scan; masks must be identical."""
    torch.set_num_threads(args.threads)
    predictor = build_predictor(args.model, args.config, args.image_size)
    steps = [0]
    track_step = predictor.track_step

    def counting_track_step(*a: object, **kw: object) -> dict:
        steps[0] += 1
        return track_step(*a, **kw)

    predictor.track_step = counting_track_step  # type: ignore[method-assign]

    scan, lesions = synthetic_scan(tuple(args.shape), args.lesions, rng)
    ours = ScanSession(predictor, scan)
    ours_masks, ours_s = timed(lambda: run_protocol(ours, lesions, args.interactions))
    ours_steps, ours_encodes = steps[0], ours.encode_count
    encode_s = encode_seconds(predictor, ours)
    naive = ScanSession(predictor, scan, cache_capacity=1)
    naive_masks, naive_s = timed(lambda: run_protocol(naive, lesions, args.interactions))
    identical = len(ours_masks) == len(naive_masks) and all(np.array_equal(a, b)
                                                            for a, b in zip(ours_masks, naive_masks))
    track_s = max(0.0, ours_s - ours_encodes * encode_s) / max(1, ours_steps)
    naive_encodes = naive.encode_count
    ours.close()
    naive.close()
    return {
        "image_size": int(predictor.image_size), "shape": list(args.shape),
        "lesions": args.lesions, "ours_s": round(ours_s, 3), "naive_s": round(naive_s, 3),
        "speedup": round(naive_s / ours_s, 3), "masks_identical": identical, "ours_encodes": ours_encodes,
        "naive_encodes": naive_encodes, "encode_s_per_frame": round(encode_s, 4),
        "track_s_per_step": round(track_s, 4), "tracking_steps": ours_steps,
        "speedup_bound_exact": round(1.0 + naive_encodes * encode_s / max(ours_steps * track_s, 1e-9), 3),
    }


def memory_part(args: argparse.Namespace, fast_options: dict[str, Any], fast_threads: int | None,
                rng: np.random.Generator) -> dict[str, Any]:
    """B+ (``--memory-config``) at 1024 px, random weights, full-size scan: every frame encoded, then one lesion."""
    apply_threads(fast_threads)
    predictor = build_predictor("mois_sam2", args.memory_config, args.memory_image_size)
    scan, lesions = synthetic_scan(tuple(args.latency_shape), 1, rng)
    options = {key: value for key, value in fast_options.items() if key != "precision"}
    options["cache_dtype"] = args.memory_cache_dtype
    session = ScanSession(predictor, scan, precision=fast_options.get("precision", "fp32"), **options)
    start = time.perf_counter()
    with torch.inference_mode(), session.autocast():
        for frame in tqdm(range(scan.image.shape[2]), desc="encode", leave=False):
            predictor._get_image_feature(session.state, frame, batch_size=1)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    session.segment_lesion(1, interaction_clicks(lesions[0], session.shape, 0))
    click_s = time.perf_counter() - start
    return {
        "memory_config": args.memory_config, "memory_image_size": int(predictor.image_size),
        "memory_shape": list(args.latency_shape), "memory_cache_dtype": args.memory_cache_dtype,
        "memory_cache_gb": round(session.state["volume"].cache.nbytes / 1e9, 3),
        "memory_encode_s_per_frame": round(encode_s / scan.image.shape[2], 2),
        "memory_first_click_s": round(click_s, 2),
    }


def main() -> None:
    """Run the chosen parts and print one JSON line: the settings, then per part

    - ``demo_*``: ``demo_exact_click_median_s`` / ``_p95_s``, ``demo_fast_click_*``, ``demo_dice_vs_exact_mean`` /
      ``_min`` (every returned mask), ``demo_final_dice_vs_exact_mean`` (scan predictions with propagation),
      ``demo_scan_dice_exact`` / ``demo_scan_dice`` (against the ground truth); with ``--ablate`` the same keys as
      ``demo_only_<setting>_*`` for each shortcut alone;
    - ``full_*``: the same latency and Dice keys for the random-weight full-size scan, ``full_cache_gb``;
    - the ``naive`` keys (module docstring); ``memory_*`` with ``--memory``;
    - ``peak_rss_gb``: peak resident memory of the process.
    """
    args = parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    settings = interactive_settings("mois_sam2", "interactive", args.speed_override)
    result: dict[str, Any] = {"threads_exact": args.threads, "threads_fast": settings.threads,
                              "fast_options": settings.options,
                              "load_avg_1min_at_start": round(os.getloadavg()[0], 2)}
    if args.memory:
        result |= memory_part(args, settings.options, settings.threads, rng)
    else:
        if "demo" in args.parts:
            result |= demo_part(args, settings.options, settings.threads)
        if "full" in args.parts:
            result |= full_part(args, settings.options, settings.threads, rng)
        if "naive" in args.parts:
            result |= naive_part(args, rng)
    result["load_avg_1min_at_end"] = round(os.getloadavg()[0], 2)
    result["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
