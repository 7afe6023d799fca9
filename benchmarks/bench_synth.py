"""Benchmark of the synthetic cohort generator (issue 2): wall time and peak memory.

Measures, each in a fresh child process writing into a temporary folder:

- ``demo``: the whole `demo` cohort (28 scans of 1160x320x20) with ``--workers`` processes (default 2);
  target <= 60 s on 2 cores;
- ``full``: one `full` scan (2900x800x31) of the first single-visit patient of the chosen burden class (default
  ``high``, the slowest); target <= 30 s and <= 4 GB peak RSS.

Prints a human-readable line per measurement and one JSON object on the LAST line.
Usage: ``python benchmarks/bench_synth.py [--workers 2] [--burden high] [--skip-demo] [--skip-full]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
mode, out, workers, burden = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
from mois_sam2_nf.data.synthetic import PRESETS, SyntheticPatient, generate_cohort, plan_cohort
from mois_sam2_nf.data.synthetic.cohort import generate_patient
start = time.perf_counter()
info = {}
if mode == "demo":
    generate_cohort("demo", out, seed=0, workers=workers, progress=False)
    info["scans"] = PRESETS["demo"].n_scans
else:
    preset = PRESETS["full"]
    plan = next(p for p in plan_cohort(preset, 0)
                if p.n_visits == 1 and SyntheticPatient(preset, 0, p).burden == burden)
    records, _ = generate_patient("full", 0, plan, out)
    info.update(case=records[0]["case_id"], burden=burden, n_lesions=records[0]["n_lesions"])
info["wall_s"] = round(time.perf_counter() - start, 2)
info["cpu_s"] = round(sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
                          for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)), 2)
info["peak_rss_mb"] = round(max(resource.getrusage(who).ru_maxrss
                                for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024, 1)
print(json.dumps(info))
"""


def _run(mode: str, workers: int, burden: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with tempfile.TemporaryDirectory(prefix=f"bench_synth_{mode}_") as tmp:
        proc = subprocess.run([sys.executable, "-c", CHILD, mode, tmp, str(workers), burden], env=env,
                              capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench_synth: {mode} run failed:\n{proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="worker processes for the demo cohort")
    parser.add_argument("--burden", choices=("low", "medium", "high"), default="high", help="burden of the full scan")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-full", action="store_true")
    args = parser.parse_args()
    result: dict = {"benchmark": "synth", "cpu_count": os.cpu_count()}
    if not args.skip_full:
        full = _run("full", 1, args.burden)
        print(f"full: one scan ({full['burden']}, {full['n_lesions']} lesions) {full['wall_s']} s wall, "
              f"{full['cpu_s']} s CPU, peak RSS {full['peak_rss_mb']} MB (targets 30 s, 4096 MB)")
        result["full_scan"] = full | {"target_wall_s": 30, "target_rss_mb": 4096,
                                      "ok": full["wall_s"] <= 30 and full["peak_rss_mb"] <= 4096}
    if not args.skip_demo:
        demo = _run("demo", args.workers, args.burden)
        print(f"demo: {demo['scans']} scans with {args.workers} workers {demo['wall_s']} s wall, "
              f"{demo['cpu_s']} s CPU, "
              f"peak RSS {demo['peak_rss_mb']} MB (target 60 s)")
        result["demo_cohort"] = demo | {"workers": args.workers, "target_wall_s": 60, "ok": demo["wall_s"] <= 60}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
