"""Click-seeded 3-D region growing, the classical interactive baseline (no weights).

- :mod:`.grow`: the algorithm on one scan (SimpleITK connected thresholds and fast marching).
- :mod:`.adapter`: the ``region_growing`` evaluation adapter (interactive; each lesion from its own clicks).
"""
