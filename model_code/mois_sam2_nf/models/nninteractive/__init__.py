"""nnInteractive baseline through the ``nninteractive`` package's own inference session (weights not shipped).

- :mod:`.adapter`: the ``nninteractive`` evaluation adapter (interactive; each lesion its own target).
- :mod:`.random_model`: a small random model folder in nnInteractive's on-disk format (tests and smoke runs).
"""
