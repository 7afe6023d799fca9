"""VISTA3D baseline on MONAI's implementation: point prompts and automatic segmentation, NF as class 133.

- :mod:`.config`: the typed config (:class:`~.config.VISTA3DConfig`) of the YAML configs (``configs/vista3d.yaml``:
  the paper's ``vista3d132``; ``configs/vista3d_smoke.yaml``: narrow, for CPU).
- :mod:`.network`: the network from a config; MONAI-bundle weights.
- :mod:`.inference`: the point-based window inferer with a per-window embedding cache, the sliding-window inferer.
- :mod:`.train`: fine-tuning of the point and automatic branches; ``model.pt`` + ``meta.json``.
- :mod:`.adapter`: the ``vista3d`` evaluation adapter (interactive and automatic).
"""
