"""Device check (GPU when present, else CPU): the demo model under the evaluation protocol, B+ 1024 px click latency.

Two measurements, one JSON line at the end (run it whenever a GPU is lent; about 5 minutes on one GPU):

1. ``protocol_*``: the shipped demo MOIS-SAM2 weights on one demo test scan under the lesion-wise corrective protocol
   (exact path, the evaluation default; bf16 autocast on CUDA): wall time, per-click latency (median, p95), scan Dice
   against the ground truth.
2. ``click_*``: randomly initialised MOIS-SAM2 B+ at 1024 px on a full-size synthetic scan (2900 x 800 x 31, the
   ``full`` preset) with the interactive settings of ``models/interactive.yaml`` and bf16 autocast: per-click latency
   (median, p95) of the synthetic lesion pattern of ``bench_volume_predictor.py``, encode time per frame and peak
   accelerator memory. ``--compile`` compiles the image encoder (sam2's ``compile_image_encoder``) and reports the
   same keys; the first click then includes the compilation.

``--quick`` shrinks everything (demo config at 128 px on a 290 x 80 x 8 scan, 2 prompted lesions) to prove the
script runs on a CPU in well under a minute.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np
import torch
from bench_volume_predictor import (
    DEMO_ROOT,
    DEMO_WEIGHTS,
    build_predictor,
    demo_protocol,
    dice,
    latency_stats,
    lesion_clicks_part,
    synthetic_scan,
)
from mois_sam2_nf.segmenters import create_segmenter
from mois_sam2_nf.models.interactive import interactive_settings

DEMO_SCAN = DEMO_ROOT / "imagesTs_1" / "1_2009_P_2002_T2.nii.gz"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny CPU-sized setting (proves the script runs)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--compile", action="store_true", help="also measure with the image encoder compiled")
    parser.add_argument("--lesions", type=int, default=3, help="synthetic lesions clicked on the full-size scan")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def protocol_part(device: str, precision: str, num_lesions: int, seed: int) -> dict[str, Any]:
    """Demo weights on one demo scan under the lesion-wise corrective protocol (exact path)."""
    segmenter = create_segmenter("mois_sam2", checkpoint=str(DEMO_WEIGHTS), device=device, precision=precision)
    start = time.perf_counter()
    run = demo_protocol(segmenter, DEMO_SCAN, num_lesions, seed)
    return {"protocol_case": run.scan.case_id, "protocol_s": round(time.perf_counter() - start, 2),
            "protocol_clicks": len(run.recorder.seconds), **latency_stats("protocol", run.recorder.seconds),
            "protocol_scan_dice": round(dice(run.truth, run.prediction), 4)}


def click_part(args: argparse.Namespace, device: str, precision: str, compiled: bool) -> dict[str, Any]:
    """Random B+ (quick: demo config) on the full-size (quick: small) scan, interactive settings, bf16."""
    config, image_size, shape = (("mois_sam2_demo", 128, (290, 80, 8)) if args.quick
                                 else ("mois_sam2.1_hiera_b+", None, (2900, 800, 31)))
    torch.manual_seed(args.seed)
    predictor = build_predictor("mois_sam2", config, image_size, device=device)
    if compiled:
        predictor.image_encoder.forward = torch.compile(predictor.image_encoder.forward, dynamic=False)
    scan, lesions = synthetic_scan(shape, args.lesions, np.random.default_rng(args.seed))
    options = interactive_settings("mois_sam2").options | {"precision": precision}
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    _, seconds, cache_gb = lesion_clicks_part(predictor, scan, lesions, 3, options, None)
    prefix = "click_compiled" if compiled else "click"
    result = {f"{prefix}_config": config, f"{prefix}_image_size": int(predictor.image_size),
              f"{prefix}_shape": list(shape), **latency_stats(prefix, seconds),
              f"{prefix}_first_s": round(seconds[0], 3),
              f"{prefix}_later_median_s": round(statistics.median(seconds[1:]), 3),
              f"{prefix}_total_s": round(time.perf_counter() - start, 2), f"{prefix}_cache_gb": round(cache_gb, 3)}
    if device.startswith("cuda"):
        result[f"{prefix}_peak_gpu_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
    return result


def main() -> None:
    args = parse_args()
    cuda = torch.cuda.is_available()
    device = args.device or ("cuda" if cuda else "cpu")
    precision = "bf16" if device.startswith("cuda") else "fp32"
    start = time.perf_counter()
    result: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu", "quick": args.quick,
        "precision": precision, "torch": torch.__version__,
        **protocol_part(device, precision, 2 if args.quick else 20, args.seed),
        **click_part(args, device, "bf16", compiled=False),
    }
    if args.compile:
        result |= click_part(args, device, "bf16", compiled=True)
    result["total_s"] = round(time.perf_counter() - start, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
