"""Benchmark: encode-once volume predictor vs the naive path that re-encodes frames on every pass (as plain sam2).

Protocol (lesion-wise corrective pattern, model spec 6.3): for each of ``--lesions`` synthetic lesions,
``--interactions`` interactions (positive centre click, negative click beside the lesion, positive click on the next
frame); every interaction resends all clicks and propagates forward and in reverse; MOIS-SAM2 then runs one semantic
propagation pass. Both paths use the same model (random weights), volume and clicks in the same run; masks are compared
voxel by voxel.

A second, larger scan (``--latency-shape``, full preset size by default) measures per-click latency and peak memory of
our path alone.

The last line of stdout is one JSON object: ``speedup``, ``masks_identical``, ``click_latency_median_s``,
``click_latency_p95_s``, ``peak_rss_gb``, plus ``encode_s_per_frame``, ``track_s_per_step`` (1 thread by default) and
``speedup_bound_exact`` = 1 + naive encodes x encode / (steps x track): the speed-up of a predictor that encoded
nothing at all but ran the same tracking steps -- the ceiling of any exact predictor, since skipping tracking steps
changes the masks.

Example (quick): ``python benchmarks/bench_volume_predictor.py --image-size 128 --shape 290 80 10 --lesions 3
--latency-shape 580 160 10 --latency-lesions 1``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from tqdm import tqdm

from mois_sam2_nf.data.view import ScanView
from mois_sam2_nf.evaluation.interface import Click, Scan
from mois_sam2_nf.models.sam2.volume_predictor import VolumeInferenceMixin
from mois_sam2_nf.models.session import ScanSession

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
    parser.add_argument("--model", choices=sorted(TARGETS), default="mois_sam2")
    parser.add_argument("--config", default=None, help="config name or YAML (default: <model>.1_hiera_t)")
    parser.add_argument("--image-size", type=int, default=None, help="override the config's image_size")
    parser.add_argument("--shape", type=int, nargs=3, default=(1160, 320, 20), metavar=("H", "W", "F"),
                        help="canonical size of the comparison scan (demo preset)")
    parser.add_argument("--lesions", type=int, default=20)
    parser.add_argument("--interactions", type=int, default=3, choices=(1, 2, 3))
    parser.add_argument("--latency-shape", type=int, nargs=3, default=(2900, 800, 31), metavar=("H", "W", "F"),
                        help="canonical size of the latency/memory scan (full preset)")
    parser.add_argument("--latency-lesions", type=int, default=3, help="lesions on the latency scan (0 = skip)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def build_predictor(model: str, config: str | None, image_size: int | None) -> VolumeInferenceMixin:
    """Random-weight predictor on CPU (the object-score head is biased so objects are tracked, not dropped)."""
    import importlib

    module, builder, target = TARGETS[model]
    overrides = [f"++model.image_size={image_size}"] if image_size else []
    name = config or ("mois_sam2.1_hiera_t" if model == "mois_sam2" else "sam2.1_hiera_t")
    predictor = getattr(importlib.import_module(module), builder)(name, None, device="cpu", target=target,
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


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
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
    result = {
        "model": args.model, "config": args.config or f"{args.model}.1_hiera_t",
        "image_size": int(predictor.image_size), "threads": args.threads, "shape": list(args.shape),
        "lesions": args.lesions, "interactions": args.interactions,
        "ours_s": round(ours_s, 3), "naive_s": round(naive_s, 3), "speedup": round(naive_s / ours_s, 3),
        "masks_identical": identical, "ours_encodes": ours_encodes, "naive_encodes": naive.encode_count,
        "encode_s_per_frame": round(encode_s, 4),
        "track_s_per_step": round(track_s, 4),
        "tracking_steps": ours_steps,
        "speedup_bound_exact": round(1.0 + naive.encode_count * encode_s / max(ours_steps * track_s, 1e-9), 3),
    }
    ours.close()
    naive.close()
    if args.latency_lesions > 0:
        big_scan, big_lesions = synthetic_scan(tuple(args.latency_shape), args.latency_lesions, rng)
        latencies: list[float] = []
        session = ScanSession(predictor, big_scan)
        run_protocol(session, big_lesions, args.interactions, on_click=latencies.append)
        result |= {
            "latency_shape": list(args.latency_shape), "latency_lesions": args.latency_lesions,
            "click_latency_median_s": round(statistics.median(latencies), 3),
            "click_latency_p95_s": round(float(np.percentile(latencies, 95)), 3),
            "cache_gb": round(session.state["volume"].cache.nbytes / 1e9, 3),
        }
    result["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 3)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
