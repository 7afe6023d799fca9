"""One synthetic patient: its seeded streams, its visits, and each visit's rendered scan (in memory).

Random streams (docs/synthetic_data.md): ``default_rng(SeedSequence(seed, spawn_key=(set, patient, visit, stream)))``.
The anatomy (timeline, body) and lesion streams use ``visit = 0`` and are shared by all visits of the patient, which
are rendered in order; acquisition and noise streams are per scan. A patient therefore renders identically whatever
the order or process in which patients are generated.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from mois_sam2_nf.data.instances import size_ordered_components

from mois_sam2_nf.data.synthetic.anatomy import FORBIDDEN, TISSUES, Anatomy, Body, build_body, draw_anatomy, nerve_paths
from mois_sam2_nf.data.synthetic.lesions import (
    ANCHOR_VOLUME_ML,
    LOCATION_PROBS,
    LesionObject,
    LesionPainter,
    LesionSampler,
    PathSampler,
    count_components,
)
from mois_sam2_nf.data.synthetic.presets import (
    BURDEN_PROBABILITIES,
    PLEXIFORM_COUNTS,
    PLEXIFORM_MAX_LENGTH_MM,
    SITES,
    Preset,
    SetSpec,
)
from mois_sam2_nf.data.synthetic.render import Acquisition, Canvas, draw_acquisition, finalize, to_disk

#: stream ids (last spawn-key component)
ANATOMY, LESIONS, ACQUISITION, NOISE = 0, 1, 2, 3
#: nodule placement attempts per wanted lesion (plus a fixed base)
ATTEMPTS_PER_LESION = 40


def stream(seed: int, set_index: int, patient_index: int, visit: int, kind: int) -> np.random.Generator:
    """The generator of one stream."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(set_index, patient_index, visit, kind)))


@dataclass(frozen=True)
class PatientPlan:
    """Who a patient is in the cohort: set, index within the set, id and number of visits."""

    set: SetSpec
    index: int
    patient_id: int
    n_visits: int

    def timeline(self, seed: int) -> tuple[np.random.Generator, list[int], list[float]]:
        """``(anatomy stream positioned after the timeline, study years, years since the first visit)``."""
        rng = stream(seed, self.set.index, self.index, 0, ANATOMY)
        base = int(rng.integers(2008, 2020))
        offsets = np.concatenate(([0.0], np.cumsum(rng.uniform(1.0, 4.0, size=self.n_visits - 1))))
        return rng, [base + int(round(t)) for t in offsets], [float(t) for t in offsets]

    def case_ids(self, seed: int) -> list[str]:
        """Case names ``{visit}_{year}_P_{patient}_T2`` (``_T2_STIR`` for test set 4), visits counted from 1."""
        _, years, _ = self.timeline(seed)
        return [f"{v + 1}_{year}_P_{self.patient_id}{self.set.case_suffix}" for v, year in enumerate(years)]


def plan_cohort(preset: Preset, seed: int) -> list[PatientPlan]:
    """All patients of a preset; a seeded permutation assigns the visit counts of each set to its patients."""
    plans = []
    for spec in preset.sets:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(spec.index,)))
        visits = rng.permutation(np.asarray(spec.visits))
        plans += [PatientPlan(spec, i, spec.first_patient_id + i, int(n)) for i, n in enumerate(visits)]
    return plans


@dataclass
class SyntheticScan:
    """One rendered scan.

    Attributes:
        case_id: file name stem.
        image: on-disk array (site axis order and dtype).
        label: on-disk uint16 instance ids (26-connected, ids by decreasing volume).
        affine: on-disk voxel -> world affine.
        canvas: the painted canonical volumes (see :attr:`tissue`).
        record: per-scan draws and outcomes (a row of patients.csv plus the manifest details).
    """

    case_id: str
    image: np.ndarray
    label: np.ndarray
    affine: np.ndarray
    canvas: Canvas
    record: dict

    @property
    def tissue(self) -> np.ndarray:
        """Canonical ``(H, W, F)`` uint8 ids (``anatomy.TISSUES``) of voxels >= 75 % one tissue, else ``MIXED``."""
        return self.canvas.pure_tissue()


def _paint_anatomy(canvas: Canvas, body: Body, anatomy: Anatomy, acq: Acquisition) -> None:
    for layer in body.layers:
        region = canvas.region(layer.shape)
        if region is None:
            continue
        tissue = layer.tissue
        if layer.value is not None:
            value = layer.value
        elif tissue in ("fat", "marrow"):
            value = acq.fat_ratio
        else:
            value = 1.0 if tissue == "muscle" else anatomy.intensity[tissue]
        canvas.paint(region, value, TISSUES[tissue])
        sl, occ = region
        if layer.body:
            canvas.body[sl] |= occ >= 0.5
        if tissue in FORBIDDEN:
            canvas.forbidden[sl] |= occ > 0.01


def lesion_instances(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canonical lesion mask -> (uint16 instance labels by decreasing volume, voxel counts), as stored on disk."""
    labels, sizes = size_ordered_components(mask, connectivity=26)
    return labels.astype(np.uint16), sizes


class _Visit:
    """Lesion bookkeeping of one visit: adds nodules within the burden range."""

    def __init__(self, painter: LesionPainter, sampler: LesionSampler, objects: list[LesionObject], burden: str,
                 visit: int, years: float, rng: np.random.Generator) -> None:
        self.painter, self.sampler, self.objects = painter, sampler, objects
        self.burden, self.visit, self.years, self.rng = burden, visit, years, rng

    def add_nodules(self, wanted: int, count: int, limit: int, anchor: bool = False) -> int:
        """Place up to ``wanted`` new nodules without exceeding ``limit`` components; returns the new count."""
        probs = LOCATION_PROBS[self.burden]
        placed = 0
        for _ in range(20 + ATTEMPTS_PER_LESION * wanted):
            if placed >= wanted or count >= limit:
                break
            if anchor:
                location = "nerve" if self.rng.random() < 0.6 else "intramuscular"
            else:
                location = ("cutaneous", "nerve", "intramuscular")[int(self.rng.choice(3, p=probs))]
            obj = self.sampler.nodule(len(self.objects) + 1, self.visit, self.years, location, anchor=anchor)
            if obj is None or (anchor and self.painter.volume_ml(obj, 1.0) < ANCHOR_VOLUME_ML + 0.5):
                continue
            if self.painter.place(obj, 1.0, max_components=1):
                self.objects.append(obj)
                placed += 1
                count += 1
        return count


class SyntheticPatient:
    """One patient's draws; :meth:`scans` renders the visits in order (docs/synthetic_data.md).

    After :meth:`scans` is exhausted, :attr:`objects` holds every lesion object of every visit.
    """

    def __init__(self, preset: Preset, seed: int, plan: PatientPlan) -> None:
        self.preset, self.seed, self.plan = preset, seed, plan
        rng_a, self.study_years, self.years = plan.timeline(seed)
        self.anatomy = draw_anatomy(rng_a)
        self.rng_lesions = stream(seed, plan.set.index, plan.index, 0, LESIONS)
        classes = list(BURDEN_PROBABILITIES)
        probs = list(BURDEN_PROBABILITIES.values())
        self.burden = "low" if plan.set.low_burden_only else classes[int(self.rng_lesions.choice(3, p=probs))]
        self.count_range = preset.lesion_counts[self.burden]
        self.target = int(self.rng_lesions.integers(self.count_range[0], self.count_range[1] + 1))
        lo, hi = PLEXIFORM_COUNTS[self.burden]
        self.n_chains = int(self.rng_lesions.integers(lo, hi + 1))
        self.objects: list[LesionObject] = []

    def to_json(self) -> dict:
        """Patient-level manifest entry: anatomy, burden class, target count and all lesion objects."""
        return {"patient_id": self.plan.patient_id, "set": self.plan.set.name, "burden": self.burden,
                "target_lesions": self.target, "anatomy": self.anatomy.to_json(),
                "lesion_objects": [o.to_json() for o in self.objects]}

    def _first_visit(self, visit: _Visit, painter: LesionPainter, sampler: LesionSampler) -> None:
        """Anchor nodule (>= 3 ml), plexiform chains, then nodules up to the target count."""
        count = visit.add_nodules(1, 0, self.count_range[1], anchor=True)
        for _ in range(self.n_chains):
            for _ in range(10):
                obj = sampler.chain(len(self.objects) + 1, 0, 0.0, PLEXIFORM_MAX_LENGTH_MM[self.burden])
                n = painter.place(obj, 1.0, max_components=max(0, self.target - count), require_all=False)
                if n:
                    self.objects.append(obj)
                    count += n
                    break
        visit.add_nodules(self.target - count, count, self.target)

    def _follow_up(self, v: int, visit: _Visit, painter: LesionPainter, canvas: Canvas) -> None:
        """Grown earlier objects (nodules kept separate where possible), Poisson new nodules, count kept in range."""
        years = self.years
        for obj in list(self.objects):
            now, before = obj.scale(years[v]), obj.scale(years[v - 1])
            if obj.kind != "nodule" or not any(
                    painter.place(obj, s, max_components=1) for s in (now, before, 0.85 * before)):
                painter.paint_anyway(obj, now)
        count = count_components(canvas.lesion)
        lo, hi = self.count_range
        n_new = int(self.rng_lesions.poisson(0.05 * len(self.objects) * (years[v] - years[v - 1])))
        count = visit.add_nodules(n_new, count, hi)
        visit.add_nodules(lo - count, count, lo)

    def scans(self) -> Iterator[SyntheticScan]:
        """Render and yield the visits in order."""
        plan, preset, seed = self.plan, self.preset, self.seed
        site = SITES[plan.set.site]
        geometry = preset.geometries[site.geometry_key]
        paths = PathSampler(nerve_paths(self.anatomy))
        dr, dc, df = geometry.spacing
        min_radius, min_depth = max(dr, dc), max(2.0, 0.5 * df)
        voxel_ml = float(np.prod(geometry.spacing)) / 1000.0
        case_ids = plan.case_ids(seed)
        for v in range(plan.n_visits):
            rng_q = stream(seed, plan.set.index, plan.index, v, ACQUISITION)
            shift = (float(rng_q.uniform(-10, 10)), float(rng_q.uniform(-10, 10)), float(rng_q.uniform(-5, 5)))
            fat_scale = float(rng_q.uniform(0.9, 1.1))
            body = build_body(self.anatomy, geometry.fov_mm, shift, fat_scale)
            acq = draw_acquisition(rng_q, site, geometry, body.feet_z)
            canvas = Canvas(geometry, preset.inplane_supersample)
            _paint_anatomy(canvas, body, self.anatomy, acq)
            painter = LesionPainter(canvas, body.origin, acq.lesion_contrast, min_radius, min_depth)
            sampler = LesionSampler(self.rng_lesions, body, paths, min_radius)
            visit = _Visit(painter, sampler, self.objects, self.burden, v, self.years[v], self.rng_lesions)
            if v == 0:
                self._first_visit(visit, painter, sampler)
            else:
                self._follow_up(v, visit, painter, canvas)
            labels, sizes = lesion_instances(canvas.lesion)
            if not len(sizes) or sizes[0] * voxel_ml < ANCHOR_VOLUME_ML:
                visit.add_nodules(1, 0, 1, anchor=True)
                labels, sizes = lesion_instances(canvas.lesion)
            canonical = finalize(canvas, acq, rng_q, stream(seed, plan.set.index, plan.index, v, NOISE), site.dtype,
                                 preset.row_chunk)
            image, affine = to_disk(canonical, geometry, site.axcodes)
            label, _ = to_disk(labels, geometry, site.axcodes)
            record = {
                "case_id": case_ids[v], "patient_id": plan.patient_id, "set": plan.set.name, "visit": v + 1,
                "study_year": self.study_years[v], "site": site.name, "vendor": site.vendor,
                "field_strength_T": site.field_strength_t, "burden": self.burden, "n_lesions": int(len(sizes)),
                "tumour_volume_ml": round(float(sizes.sum()) * voxel_ml, 3),
                "n_plexiform": sum(o.kind == "plexiform" for o in self.objects), "generator_seed": seed,
                "largest_lesion_ml": round(float(sizes[0]) * voxel_ml, 3) if len(sizes) else 0.0,
                "years_since_first": self.years[v], "shift_mm": shift, "fat_scale": fat_scale,
                "acquisition": acq.to_json(),
                "lesion_objects": [{"id": o.id, "scale": o.scale(self.years[v])} for o in self.objects],
            }
            yield SyntheticScan(case_ids[v], image, label, affine, canvas, record)
