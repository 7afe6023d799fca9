"""mois-sam2-nf: multi-lesion interactive segmentation of neurofibromas in whole-body MRI.

Sub-packages: ``data`` (NIfTI io, scan view, synthetic cohort, slicing, splits, nnU-Net export),
``models`` (MOIS-SAM2, SAM2, baselines), ``training``, ``evaluation`` (simulated clicks, protocols,
metrics, runner), ``analysis`` (tables, statistics, figures, report) and ``cli`` (thin entry points).
"""

__version__ = "0.1.0"
