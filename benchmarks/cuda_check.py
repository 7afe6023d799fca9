"""CUDA check: the same random-weight model, scan and clicks on CUDA (bf16 autocast) and on CPU (fp32); mask agreement.

Runs the lesion-wise pattern of ``bench_volume_predictor.py`` (a few lesions, corrective clicks, MOIS-SAM2 semantic
propagation at the end) on both devices and compares every returned mask. Without CUDA it says so
(``"cuda": false``) and compares CPU bf16 autocast against CPU fp32 instead, so the script always runs.

The last line of stdout is one JSON object: ``cuda``, ``device_name``, ``candidate`` (what was compared with CPU fp32),
``dice_mean``, ``dice_min``, ``fraction_identical_voxels``, ``masks_identical`` (count of bit-identical masks) and
``masks``, plus wall times.
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import numpy as np
import torch
from bench_volume_predictor import TARGETS, build_predictor, run_protocol, synthetic_scan

from mois_sam2_nf.models.session import ScanSession


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two bool masks (1.0 when both are empty)."""
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int((a & b).sum()) / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(TARGETS), default="mois_sam2")
    parser.add_argument("--config", default=None, help="config name or YAML (default: <model>_demo)")
    parser.add_argument("--shape", type=int, nargs=3, default=(290, 80, 10), metavar=("H", "W", "F"))
    parser.add_argument("--lesions", type=int, default=3)
    parser.add_argument("--interactions", type=int, default=3, choices=(1, 2, 3))
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    config = args.config or ("mois_sam2_demo" if args.model == "mois_sam2" else "sam2_demo")
    cpu_model = build_predictor(args.model, config, None)
    has_cuda = torch.cuda.is_available()
    candidate_model = copy.deepcopy(cpu_model).to("cuda" if has_cuda else "cpu")
    scan, lesions = synthetic_scan(tuple(args.shape), args.lesions, np.random.default_rng(args.seed))

    start = time.perf_counter()
    reference = run_protocol(ScanSession(cpu_model, scan, precision="fp32"), lesions, args.interactions)
    cpu_s = time.perf_counter() - start
    start = time.perf_counter()
    candidate = run_protocol(ScanSession(candidate_model, scan, precision="bf16"), lesions, args.interactions)
    candidate_s = time.perf_counter() - start

    dices = [dice(a, b) for a, b in zip(reference, candidate, strict=True)]
    voxels = sum(a.size for a in reference)
    same = sum(int((a == b).sum()) for a, b in zip(reference, candidate))
    print(json.dumps({
        "cuda": has_cuda,
        "device_name": torch.cuda.get_device_name(0) if has_cuda else "cpu (no CUDA: CPU bf16 autocast compared)",
        "candidate": "cuda bf16" if has_cuda else "cpu bf16",
        "model": args.model, "config": config, "shape": list(args.shape), "lesions": args.lesions,
        "masks": len(dices), "masks_identical": sum(np.array_equal(a, b) for a, b in zip(reference, candidate)),
        "dice_mean": round(float(np.mean(dices)), 5), "dice_min": round(float(np.min(dices)), 5),
        "fraction_identical_voxels": round(same / voxels, 6),
        "nonempty_reference_masks": sum(bool(a.any()) for a in reference),
        "cpu_fp32_s": round(cpu_s, 2), "candidate_s": round(candidate_s, 2),
    }))


if __name__ == "__main__":
    main()
