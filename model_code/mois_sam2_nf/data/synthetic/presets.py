"""Tables of the synthetic cohort as data: geometry presets, sites (acquisition ranges), sets and burden classes.

Everything here is a frozen dataclass or a mapping of them; no logic beyond look-ups. Ranges are ``(low, high)``
tuples for uniform draws. Sizes are canonical ``(H, W, F)`` = rows S->I, columns R->L, frames P->A
(docs/synthetic_data.md, Synthetic cohort).
"""

from __future__ import annotations

from dataclasses import dataclass

from mois_sam2_nf.data.view import triple

Range = tuple[float, float]

#: bumped whenever a change alters generated arrays (stored in the manifest and the NIfTI ``descrip``)
GENERATOR_VERSION = "1"


@dataclass(frozen=True)
class Geometry:
    """A scan grid in canonical order.

    Attributes:
        shape: ``(H, W, F)`` voxels.
        spacing: ``(row_mm, col_mm, frame_mm)``.
    """

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]

    @property
    def fov_mm(self) -> tuple[float, float, float]:
        """Field of view ``(S-I, R-L, A-P)`` in mm."""
        return triple(n * d for n, d in zip(self.shape, self.spacing))


@dataclass(frozen=True)
class Site:
    """Acquisition model of one site / field strength (docs/synthetic_data.md, Sets and sites)."""

    name: str
    vendor: str
    field_strength_t: float
    snr: Range
    lesion_contrast: Range
    fat_ratio: Range
    bias_amplitude: Range
    bias_lr_gradient: float
    n_stations: tuple[int, int]
    station_gain_step: Range
    station_blend_mm: float
    units: Range
    dtype: str
    axcodes: tuple[str, str, str]
    geometry_key: str


SITES: dict[str, Site] = {
    "A3T": Site("A", "vendor_A", 3.0, (25, 40), (3.0, 5.5), (0.25, 0.45), (0.15, 0.30), 0.0, (4, 5), (0.0, 0.05),
                40.0, (800, 1200), "int16", ("L", "P", "S"), "main"),
    "A1.5T": Site("A", "vendor_A", 1.5, (12, 20), (2.2, 4.0), (0.30, 0.50), (0.05, 0.15), 0.0, (4, 5), (0.0, 0.05),
                  40.0, (800, 1200), "int16", ("L", "P", "S"), "main"),
    "B": Site("B", "vendor_B", 1.5, (20, 35), (2.8, 5.0), (0.15, 0.30), (0.20, 0.40), 0.10, (3, 4), (0.10, 0.25),
              20.0, (150, 3000), "float32", ("R", "A", "S"), "site_b"),
}


@dataclass(frozen=True)
class SetSpec:
    """One data set of the cohort.

    Attributes:
        name: ``"train"``, ``"ts1"`` .. ``"ts4"``.
        index: spawn-key component of the set (0..4).
        images_dir / labels_dir: folders of the raw layout (docs/synthetic_data.md).
        site: key into :data:`SITES`.
        first_patient_id: patient ids count up from here.
        case_suffix: appended to ``{visit}_{year}_P_{patient}``.
        visits: per-patient visit counts (multiset; the seeded permutation assigns them to patients).
        low_burden_only: ts3 (all patients in the low class).
    """

    name: str
    index: int
    images_dir: str
    labels_dir: str
    site: str
    first_patient_id: int
    case_suffix: str
    visits: tuple[int, ...]
    low_burden_only: bool = False


def _visits(*groups: tuple[int, int]) -> tuple[int, ...]:
    """``(count, visits)`` groups -> flat tuple of visit counts, e.g. ``(2, 1), (1, 2)`` -> ``(1, 1, 2)``."""
    return tuple(v for n, v in groups for _ in range(n))


def _sets(train: tuple[int, ...], ts1: int, ts2: tuple[int, ...], ts3: tuple[int, ...],
          ts4: int) -> tuple[SetSpec, ...]:
    return (
        SetSpec("train", 0, "imagesTr", "labelsTr_instance", "A3T", 1000, "_T2", train),
        SetSpec("ts1", 1, "imagesTs_1", "labelsTs_1_instance", "A3T", 2000, "_T2", _visits((ts1, 1))),
        SetSpec("ts2", 2, "imagesTs_2", "labelsTs_2_instance", "A1.5T", 3000, "_T2", ts2),
        SetSpec("ts3", 3, "imagesTs_3", "labelsTs_3_instance", "A3T", 4000, "_T2", ts3, low_burden_only=True),
        SetSpec("ts4", 4, "imagesTs_4", "labelsTs_4_instance", "B", 5000, "_T2_STIR", _visits((ts4, 1))),
    )


#: burden class -> probability for the sets that are not low-burden only
BURDEN_PROBABILITIES: dict[str, float] = {"low": 0.30, "medium": 0.45, "high": 0.25}

#: burden class -> (min, max) number of plexiform chains; the low class has at most one short chain
PLEXIFORM_COUNTS: dict[str, tuple[int, int]] = {"low": (0, 1), "medium": (1, 4), "high": (2, 8)}

#: longest plexiform chain (mm) per burden class
PLEXIFORM_MAX_LENGTH_MM: dict[str, float] = {"low": 120.0, "medium": 400.0, "high": 400.0}


@dataclass(frozen=True)
class Preset:
    """A cohort preset.

    Attributes:
        name: ``tiny``, ``demo`` or ``full``.
        geometries: ``{"main": ..., "site_b": ...}``.
        inplane_supersample: sub-pixels per in-plane axis for partial volume (2 for ``tiny``).
        lesion_counts: burden class -> (min, max) lesion components per scan.
        sets: the five sets.
        row_chunk: rows processed at once when adding bias, noise and storage units (bounds peak memory).
    """

    name: str
    geometries: dict[str, Geometry]
    inplane_supersample: int
    lesion_counts: dict[str, tuple[int, int]]
    sets: tuple[SetSpec, ...]
    row_chunk: int

    @property
    def n_scans(self) -> int:
        """Total number of scans of the cohort."""
        return sum(sum(s.visits) for s in self.sets)


PRESETS: dict[str, Preset] = {
    "full": Preset(
        "full",
        {"main": Geometry((2900, 800, 31), (0.625, 0.625, 7.8)),
         "site_b": Geometry((2320, 640, 40), (0.78125, 0.78125, 6.0))},
        1,
        {"low": (1, 20), "medium": (21, 100), "high": (101, 350)},
        _sets(_visits((27, 1), (9, 2), (6, 3)), 13, _visits((7, 1), (2, 2)), _visits((2, 3), (8, 2)), 11),
        256,
    ),
    "demo": Preset(
        "demo",
        {"main": Geometry((1160, 320, 20), (1.5625, 1.5625, 12.0)),
         "site_b": Geometry((928, 256, 26), (1.953125, 1.953125, 240.0 / 26))},
        1,
        {"low": (1, 15), "medium": (16, 60), "high": (61, 200)},
        _sets(_visits((6, 1), (3, 2), (1, 3)), 3, _visits((3, 1)), _visits((2, 2)), 3),
        1160,
    ),
    "tiny": Preset(
        "tiny",
        {"main": Geometry((290, 80, 10), (6.25, 6.25, 24.0)),
         "site_b": Geometry((232, 64, 13), (7.8125, 7.8125, 240.0 / 13))},
        2,
        {"low": (1, 8), "medium": (9, 25), "high": (26, 50)},
        _sets(_visits((4, 1), (2, 2)), 2, _visits((2, 1)), _visits((1, 2)), 2),
        290,
    ),
}


def get_preset(name: str) -> Preset:
    """Look up a preset by name; raises ``KeyError`` naming the valid choices."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})") from None
