"""Cohort generation: files of the raw layout, ``patients.csv``, ``synthetic_manifest.json``, workers and resume.

The unit of work is one patient (its visits depend on each other). Patients are independent and seeded by their
position in the cohort, so the files are byte-identical for any worker count. Re-running the same preset and seed
into the same folder skips patients whose scans are complete; another preset/seed is refused.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from mois_sam2_nf.atomic import write_json, write_text
from mois_sam2_nf.data.io import is_nifti, save_nifti
from mois_sam2_nf.data.synthetic.patient import PatientPlan, SyntheticPatient, plan_cohort
from mois_sam2_nf.data.synthetic.presets import GENERATOR_VERSION, Preset, get_preset
from mois_sam2_nf.errors import InputError

MANIFEST_NAME = "synthetic_manifest.json"
PATIENTS_NAME = "patients.csv"
#: columns of patients.csv (docs/synthetic_data.md, Raw data layout)
CSV_COLUMNS = ("case_id", "patient_id", "set", "visit", "study_year", "site", "vendor", "field_strength_T", "burden",
               "n_lesions", "tumour_volume_ml", "n_plexiform", "generator_seed")
#: seconds between manifest checkpoints while generating
CHECKPOINT_SECONDS = 5.0


def _paths(out: Path, plan: PatientPlan, case: str) -> tuple[Path, Path]:
    return (out / plan.set.images_dir / f"{case}.nii.gz", out / plan.set.labels_dir / f"{case}.nii.gz")


def _descrip(preset: Preset) -> str:
    return f"mois-sam2-nf synthetic v{GENERATOR_VERSION} preset={preset.name}"


def generate_patient(preset_name: str, seed: int, plan: PatientPlan,
                     out_dir: str | os.PathLike[str]) -> tuple[list[dict], dict]:
    """Render and write every scan of one patient; returns ``(per-scan records, patient manifest entry)``."""
    preset = get_preset(preset_name)
    patient = SyntheticPatient(preset, seed, plan)
    records = []
    for scan in patient.scans():
        image_path, label_path = _paths(Path(out_dir), plan, scan.case_id)
        save_nifti(label_path, scan.label, scan.affine, descrip=_descrip(preset))
        save_nifti(image_path, scan.image, scan.affine, descrip=_descrip(preset))
        records.append(scan.record)
    return records, patient.to_json()


def _check_out_dir(out: Path, preset: Preset, seed: int) -> dict | None:
    """Existing manifest of the same cohort (or ``None``); raises when the folder holds something else."""
    manifest_path = out / MANIFEST_NAME
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            key = (manifest["generator_version"], manifest["preset"], manifest["seed"])
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{manifest_path}: unreadable synthetic manifest; choose an empty folder") from None
        if key != (GENERATOR_VERSION, preset.name, seed):
            raise InputError(
                f"{out}: holds a synthetic cohort of version {key[0]}, preset {key[1]!r}, seed {key[2]}; refusing to "
                f"write version {GENERATOR_VERSION}, preset {preset.name!r}, seed {seed} there "
                "(choose an empty folder)")
        return manifest
    for spec in preset.sets:
        for folder in (spec.images_dir, spec.labels_dir):
            if (out / folder).is_dir() and any(is_nifti(p) for p in (out / folder).iterdir()):
                raise InputError(f"{out / folder}: holds NIfTI files but {out} has no {MANIFEST_NAME}; "
                                 "refusing to mix a synthetic cohort with other data (choose an empty folder)")
    return None


def _patients_csv(records: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in sorted(records, key=lambda r: r["case_id"]):
        writer.writerow(record)
    return buffer.getvalue()


def _manifest(preset: Preset, seed: int, scans: dict[str, dict], patients: dict[str, dict], complete: bool) -> dict:
    return {"generator_version": GENERATOR_VERSION, "preset": preset.name, "seed": seed, "complete": complete,
            "n_scans": preset.n_scans, "scans": dict(sorted(scans.items())),
            "patients": dict(sorted(patients.items()))}


def generate_cohort(preset: str, out_dir: str | os.PathLike[str] = "data/raw", seed: int = 0, workers: int = 1,
                    progress: bool = True) -> Path:
    """Write the synthetic cohort ``preset`` (``tiny``, ``demo``, ``full``) into ``out_dir``; returns ``out_dir``.

    Writes the raw layout (``imagesTr/``, ``labelsTr_instance/``, ``imagesTs_{1..4}/``, ``labelsTs_{k}_instance/``),
    ``patients.csv`` and ``synthetic_manifest.json`` (docs/synthetic_data.md). Files are identical for the same
    (generator version, preset, seed) whatever ``workers`` is. Raises :class:`InputError` for an unknown preset or
    a folder holding another cohort or other NIfTI data.
    """
    try:
        spec = get_preset(preset)
    except KeyError as err:
        raise InputError(str(err.args[0])) from None
    if workers < 1:
        raise InputError(f"workers must be >= 1, got {workers}")
    out = Path(out_dir)
    existing = _check_out_dir(out, spec, seed)
    scans: dict[str, dict] = dict(existing["scans"]) if existing else {}
    patients: dict[str, dict] = dict(existing["patients"]) if existing else {}
    plans = plan_cohort(spec, seed)
    todo = []
    for plan in plans:
        cases = plan.case_ids(seed)
        done = str(plan.patient_id) in patients and all(
            c in scans and all(p.is_file() for p in _paths(out, plan, c)) for c in cases)
        if not done:
            todo.append(plan)
    if not todo and existing and existing.get("complete") and (out / PATIENTS_NAME).is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / MANIFEST_NAME, _manifest(spec, seed, scans, patients, complete=False))
    bar = tqdm(total=spec.n_scans, initial=spec.n_scans - sum(p.n_visits for p in todo), unit="scan",
               desc=f"synth {spec.name}", disable=not progress)
    last = time.monotonic()

    def collect(result: tuple[list[dict], dict]) -> None:
        nonlocal last
        records, patient = result
        for record in records:
            scans[record["case_id"]] = record
        patients[str(patient["patient_id"])] = patient
        bar.update(len(records))
        if time.monotonic() - last > CHECKPOINT_SECONDS:
            write_json(out / MANIFEST_NAME, _manifest(spec, seed, scans, patients, complete=False))
            last = time.monotonic()

    if workers == 1 or len(todo) == 1:
        for plan in todo:
            collect(generate_patient(spec.name, seed, plan, out))
    else:
        with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            futures = [pool.submit(generate_patient, spec.name, seed, plan, out) for plan in todo]
            for future in futures:
                collect(future.result())
    bar.close()
    write_text(out / PATIENTS_NAME, _patients_csv(list(scans.values())))
    write_json(out / MANIFEST_NAME, _manifest(spec, seed, scans, patients, complete=True))
    return out


def summary(out_dir: str | os.PathLike[str]) -> str:
    """Short table of scans, patients, lesions and burden classes per set, read from the manifest."""
    manifest = json.loads((Path(out_dir) / MANIFEST_NAME).read_text(encoding="utf-8"))
    rows = ["set     scans  patients  lesions(min-max)  burden low/medium/high"]
    by_set: dict[str, list[dict]] = {}
    for record in manifest["scans"].values():
        by_set.setdefault(record["set"], []).append(record)
    for name in sorted(by_set):
        recs = by_set[name]
        counts = [r["n_lesions"] for r in recs]
        burden = [sum(r["burden"] == b for r in recs) for b in ("low", "medium", "high")]
        rows.append(f"{name:<7} {len(recs):>5}  {len({r['patient_id'] for r in recs}):>8}  "
                    f"{min(counts):>7}-{max(counts):<8}  {'/'.join(map(str, burden))}")
    return "\n".join(rows)
