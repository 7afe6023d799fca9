"""Synthetic whole-body MRI cohort (coronal STIR-like, multi-station) -- the project's embedded default data set.

``generate_cohort(preset, out_dir, seed, workers)`` writes the raw layout, ``patients.csv`` and
``synthetic_manifest.json`` (docs/synthetic_data.md). Modules: ``presets`` (tables), ``primitives`` (analytic shapes),
``anatomy`` (body model), ``lesions`` (nodules, plexiform chains, growth), ``render`` (occupancy, acquisition,
orientation), ``patient`` (seeded visits of one patient), ``cohort`` (files, manifest, workers, resume).
"""

from mois_sam2_nf.data.synthetic.cohort import generate_cohort, summary
from mois_sam2_nf.data.synthetic.patient import PatientPlan, SyntheticPatient, SyntheticScan, plan_cohort
from mois_sam2_nf.data.synthetic.presets import GENERATOR_VERSION, PRESETS

__all__ = ["GENERATOR_VERSION", "PRESETS", "PatientPlan", "SyntheticPatient", "SyntheticScan", "generate_cohort",
           "plan_cohort", "summary"]
