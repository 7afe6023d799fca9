"""Click-guided 3-D CNN baselines (baselines spec sections 1, 4, 5): the parts they share.

- :mod:`.grid`: the working grid (canonical view, optional resampling, z-score, padding) and the way back.
- :mod:`.guidance`: clicks -> guidance channels.
- :mod:`.corrections`: simulated corrective clicks from the error of a prediction (training).

SW-FastEdit (:mod:`mois_sam2_nf.models.sw_fastedit`) is built from them.
"""
