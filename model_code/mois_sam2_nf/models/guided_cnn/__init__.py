"""Click-guided 3-D CNN baselines (docs/baselines.md): the parts they share.

- :mod:`.grid`: the working grid (canonical view, optional resampling, z-score, padding) and the way back.
- :mod:`.guidance`: clicks -> guidance channels.
- :mod:`.corrections`: simulated corrective clicks from the error of a prediction (training).
- :mod:`.crops`: training crops from MONAI transforms over a ``CacheDataset`` (each scan loaded once per run).
- :mod:`.training`: fold cases, the epoch loop with resume, ``checkpoint.pt`` + ``meta.json``.
- :mod:`.config`: typed configs (dataclasses validated with ``OmegaConf.structured``), composed by Hydra with
  ``key=value`` overrides.

SW-FastEdit (:mod:`mois_sam2_nf.models.sw_fastedit`) and DINs (:mod:`mois_sam2_nf.models.dins`) are built from them.
"""
