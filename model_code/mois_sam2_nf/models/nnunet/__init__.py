"""nnU-Net v2 baseline (docs/baselines.md, nnU-Net v2): automatic segmentation with the real ``nnunetv2`` package.

- :mod:`.train`: export -> plan/preprocess -> train per fold through nnU-Net's own commands, plus ``meta.json``.
- :mod:`.adapter`: the ``nnunet`` evaluation adapter (automatic mode) around ``nnUNetPredictor``.
- ``trainers/``: trainer classes found by nnU-Net through ``nnUNet_extTrainer`` (the CPU smoke trainer).
"""
