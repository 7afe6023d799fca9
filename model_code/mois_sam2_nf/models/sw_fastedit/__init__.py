"""SW-FastEdit baseline (docs/baselines.md, SW-FastEdit): MONAI DynUNet on image + click-ball guidance, sliding windows.

- :mod:`.config`: the YAML configs (``configs/sw_fastedit.yaml``, ``configs/sw_fastedit_smoke.yaml``).
- :mod:`.network`: the DynUNet.
- :mod:`.train`: DeepEdit-style training with simulated corrective clicks; ``checkpoint.pt`` + ``meta.json``.
- :mod:`.adapter`: the ``sw_fastedit`` evaluation adapter (interactive; each lesion from its own clicks).
"""
