"""Neurofibromas: discrete nodules, plexiform chains along nerve paths, target sign, growth and placement.

A lesion *object* is a list of ellipsoidal beads in the body frame (a nodule is one bead). Objects persist across a
patient's visits; at each visit they are rendered at ``(1 + g) ** years_since_added`` times their size.
Placement is rejection-sampled on the visit's canvas: a bead must produce label voxels, stay mostly inside the body,
never touch a forbidden structure (distractors, lungs) and -- for a new object -- never touch another lesion
(26-neighbourhood), so each nodule is exactly one connected component (docs/synthetic_data.md, Lesions).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import cc3d
import numpy as np
from scipy.ndimage import binary_dilation

from mois_sam2_nf.data.synthetic.anatomy import TISSUES, Body
from mois_sam2_nf.data.synthetic.primitives import Ellipsoid
from mois_sam2_nf.data.synthetic.render import Canvas, Region
from mois_sam2_nf.data.view import triple

_CUBE = np.ones((3, 3, 3), dtype=bool)
#: location probabilities (cutaneous, nerve, intramuscular); the high class has many cutaneous nodules
LOCATION_PROBS = {"low": (0.55, 0.35, 0.10), "medium": (0.55, 0.35, 0.10), "high": (0.70, 0.22, 0.08)}
ANCHOR_VOLUME_ML = 3.0
#: largest in-plane radius (mm) a lesion bead grows to
MAX_RADIUS_MM = 35.0


@dataclass(frozen=True)
class Bead:
    """One ellipsoid of a lesion in the body frame; ``core`` > 0 is the target-sign core size (fraction of axes)."""

    center: tuple[float, float, float]
    axes: tuple[float, float, float]
    angle: float
    harmonics: tuple[tuple[int, float, float], ...]
    core: float = 0.0
    core_value: float = 1.0


@dataclass
class LesionObject:
    """A nodule (one bead) or a plexiform chain (many beads) with its growth rate and intensity factor."""

    id: int
    kind: str
    location: str
    visit_added: int
    years_added: float
    growth: float
    brightness: float
    beads: list[Bead] = field(default_factory=list)

    def scale(self, years: float) -> float:
        """Size factor at ``years`` (time since the first visit)."""
        return (1.0 + self.growth) ** max(0.0, years - self.years_added)

    def to_json(self) -> dict:
        """Plain dict for the manifest."""
        return asdict(self)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _draw_growth(rng: np.random.Generator, plexiform: bool, anchor: bool) -> float:
    """Growth per year: 70 % U(0, .10), 20 % U(.10, .25) (preferentially plexiform), 10 % U(-.10, 0)."""
    p_fast = 0.45 if plexiform else 0.18
    x = rng.random()
    if x < 0.10 and not anchor:
        return float(rng.uniform(-0.10, 0.0))
    if x < 0.10 + p_fast:
        return float(rng.uniform(0.10, 0.25))
    return float(rng.uniform(0.0, 0.10))


class PathSampler:
    """Arc-length sampling of nerve polylines (body frame, ``(k, 3)`` mm each)."""

    def __init__(self, paths: list[np.ndarray]) -> None:
        self.paths = paths
        self.cum = [np.concatenate(([0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1)))) for p in paths]
        lengths = np.array([c[-1] for c in self.cum])
        self.weights = lengths / lengths.sum()

    def length(self, i: int) -> float:
        return float(self.cum[i][-1])

    def point(self, i: int, s: float) -> tuple[np.ndarray, float]:
        """Position and in-plane direction angle (radians from +z towards +x) at arc length ``s`` of path ``i``."""
        cum, pts = self.cum[i], self.paths[i]
        s = float(np.clip(s, 0.0, cum[-1]))
        k = int(np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(pts) - 2))
        t = (s - cum[k]) / max(cum[k + 1] - cum[k], 1e-9)
        d = pts[k + 1] - pts[k]
        return pts[k] + t * d, float(math.atan2(d[1], d[0]))

    def nearest(self, i: int, q: np.ndarray) -> float:
        """Arc length on path ``i`` of the vertex nearest to ``q``."""
        return float(self.cum[i][int(np.argmin(np.linalg.norm(self.paths[i] - q, axis=1)))])


class LesionPainter:
    """Places and paints lesion beads on a canvas; tracks the lesion-component count of new objects.

    Args:
        canvas: the visit's canvas (anatomy already painted).
        origin: body-frame origin of the visit in scan coordinates.
        contrast: lesion : muscle intensity of the scan.
        min_radius: smallest in-plane semi-axis (one in-plane voxel) and ``min_depth`` the smallest A-P semi-axis.
    """

    def __init__(self, canvas: Canvas, origin: tuple[float, float, float], contrast: float, min_radius: float,
                 min_depth: float) -> None:
        self.canvas = canvas
        self.origin = np.asarray(origin)
        self.contrast = contrast
        self.min_radius = min_radius
        self.min_depth = min_depth
        self.voxel_ml = float(np.prod(canvas.geometry.spacing)) / 1000.0
        self.lesion_id = TISSUES["lesion"]

    def shape(self, bead: Bead, scale: float, core: bool = False) -> Ellipsoid:
        """Scan-frame ellipsoid of ``bead`` at ``scale`` (the core when ``core``).

        Growth saturates: a bead never grows beyond :data:`MAX_RADIUS_MM` in-plane radius (unless drawn larger).
        """
        scale = min(scale, max(1.0, MAX_RADIUS_MM / bead.axes[1]))
        au, av, ay = (a * scale for a in bead.axes)
        axes = (max(au, self.min_radius), max(av, self.min_radius), max(ay, self.min_depth))
        if core:
            axes = triple(a * bead.core for a in axes)
        center = triple(float(c) for c in np.asarray(bead.center) + self.origin)
        return Ellipsoid(center, axes, bead.angle, () if core else bead.harmonics)

    def _check(self, region: Region) -> np.ndarray | None:
        """Label voxels of a candidate region, or ``None`` when it breaks a placement rule."""
        sl, occ = region
        label = occ >= 0.5
        if not label.any() or (self.canvas.forbidden[sl] & (occ > 0.01)).any():
            return None
        if float((occ * self.canvas.body[sl]).sum()) < 0.6 * float(occ.sum()):
            return None
        if (binary_dilation(label, _CUBE) & self.canvas.lesion[sl]).any():
            return None
        return label

    def _paint(self, bead: Bead, scale: float, region: Region, label: np.ndarray, brightness: float) -> None:
        sl, occ = region
        occ = occ * ~self.canvas.forbidden[sl]
        self.canvas.paint((sl, occ), self.contrast * brightness, self.lesion_id)
        self.canvas.lesion[sl] |= label & ~self.canvas.forbidden[sl]
        if bead.core > 0:
            core = self.canvas.region(self.shape(bead, scale, core=True))
            if core is not None:
                self.canvas.paint(core, bead.core_value, self.lesion_id)

    def place(self, obj: LesionObject, scale: float, max_components: int, require_all: bool = True) -> int:
        """Paint ``obj`` if its beads pass the rules; returns its number of connected components (0 = rejected).

        With ``require_all`` every bead must pass (nodules); otherwise failing beads of a chain are skipped. Beads of
        one object may touch each other but not previously painted lesions (the canvas label is only updated once
        all beads are checked). An object that would form more than ``max_components`` components is rejected.
        """
        accepted = []
        for bead in obj.beads:
            region = self.canvas.region(self.shape(bead, scale), pad=1)
            label = None if region is None else self._check(region)
            if region is None or label is None:
                if require_all:
                    return 0
                continue
            accepted.append((bead, region, label))
        if not accepted:
            return 0
        lo = [min(r[0][a].start for _, r, _ in accepted) for a in range(3)]
        hi = [max(r[0][a].stop for _, r, _ in accepted) for a in range(3)]
        own = np.zeros([h - low for low, h in zip(lo, hi)], dtype=bool)
        for _, region, label in accepted:
            own[tuple(slice(s.start - low, s.stop - low) for s, low in zip(region[0], lo))] |= label
        n = count_components(own)
        if n > max_components:
            return 0
        for bead, region, label in accepted:
            self._paint(bead, scale, region, label, obj.brightness)
        return n

    def paint_anyway(self, obj: LesionObject, scale: float) -> None:
        """Render an existing object at a follow-up visit (clipped by forbidden structures, touching allowed)."""
        for bead in obj.beads:
            region = self.canvas.region(self.shape(bead, scale), pad=1)
            if region is not None:
                label = region[1] >= 0.5
                self._paint(bead, scale, region, label, obj.brightness)

    def volume_ml(self, obj: LesionObject, scale: float) -> float:
        """Label volume (ml) of ``obj`` alone at ``scale`` on this canvas."""
        total = 0.0
        for bead in obj.beads:
            region = self.canvas.region(self.shape(bead, scale))
            if region is not None:
                total += float((region[1] >= 0.5).sum()) * self.voxel_ml
        return total


class LesionSampler:
    """Draws lesion objects (body frame) for one patient from its lesion stream."""

    def __init__(self, rng: np.random.Generator, body: Body, paths: PathSampler, min_radius: float) -> None:
        self.rng = rng
        self.body = body
        self.paths = paths
        self.min_radius = min_radius
        self.origin = np.asarray(body.origin)

    def _bead(self, center: np.ndarray, r: float, elongation: float, angle: float) -> Bead:
        rng = self.rng
        r = max(r, self.min_radius)
        axes = (r * elongation, r, max(2.0, r * rng.uniform(0.6, 1.2)))
        harmonics = tuple((int(k), float(rng.uniform(0.0, 0.075)), float(rng.uniform(0, 2 * math.pi)))
                          for k in rng.choice([2, 3, 4], size=2, replace=False))
        core = float(rng.uniform(0.3, 0.5)) if r >= 7.5 and rng.random() < 0.5 else 0.0
        return Bead(triple(float(c) for c in center), axes, angle, harmonics, core, float(rng.uniform(1.0, 1.8)))

    def _surface_point(self, depth: float) -> np.ndarray | None:
        """A scan-frame point ``depth`` mm below the skin: on the lateral contour or the A-P surface."""
        rng = self.rng
        shapes = self.body.surfaces
        shape = shapes[int(rng.integers(0, len(shapes)))]
        b = shape.box()
        z = np.array([[rng.uniform(b.z0, b.z1)]], dtype=np.float32)
        if rng.random() < 0.6:
            side = 1 if rng.random() < 0.5 else -1
            edge, mid = (b.x1, (b.x0 + b.x1) / 2) if side > 0 else (b.x0, (b.x0 + b.x1) / 2)
            xs = np.linspace(edge, mid, 256, dtype=np.float32)[None, :]
            yc, h = shape.interval(z, xs)
            inside = np.flatnonzero(h[0] > 0)
            if not len(inside):
                return None
            k = inside[0]
            y = float(np.broadcast_to(yc, h.shape)[0, k])
            return np.array([float(z[0, 0]), float(xs[0, k]) - side * depth, y])
        x = np.array([[rng.uniform(b.x0, b.x1)]], dtype=np.float32)
        yc, h = shape.interval(z, x)
        hh = float(h.reshape(-1)[0])
        if hh <= depth:
            return None
        y = float(np.broadcast_to(yc, h.shape).reshape(-1)[0]) + (1 if rng.random() < 0.5 else -1) * (hh - depth)
        return np.array([float(z[0, 0]), float(x[0, 0]), y])

    def _muscle_point(self) -> np.ndarray | None:
        rng = self.rng
        shape = self.body.muscles[int(rng.integers(0, len(self.body.muscles)))]
        b = shape.box()
        z = np.array([[rng.uniform(b.z0, b.z1)]], dtype=np.float32)
        x = np.array([[rng.uniform(b.x0, b.x1)]], dtype=np.float32)
        yc, h = shape.interval(z, x)
        hh = float(h.reshape(-1)[0])
        if hh <= 0:
            return None
        return np.array([float(z[0, 0]), float(x[0, 0]),
                         float(np.broadcast_to(yc, h.shape).reshape(-1)[0]) + rng.uniform(-0.6, 0.6) * hh])

    def nodule(self, oid: int, visit: int, years: float, location: str, anchor: bool = False) -> LesionObject | None:
        """A nodule object at a random location of kind ``location`` (``None`` when the location draw failed)."""
        rng = self.rng
        if anchor:
            r = _log_uniform(rng, 11.0, 25.0)
        elif location == "cutaneous":
            r = _log_uniform(rng, 2.5, 10.0)
        elif location == "nerve":
            r = _log_uniform(rng, 5.0, 30.0)
        else:
            r = _log_uniform(rng, 2.5, 30.0)
        if location == "cutaneous":
            point = self._surface_point(rng.uniform(-0.3 * r, r))
        elif location == "nerve":
            i = int(rng.choice(len(self.paths.paths), p=self.paths.weights))
            pos, _ = self.paths.point(i, rng.uniform(0, self.paths.length(i)))
            point = pos + self.origin + rng.uniform(-5, 5, size=3)
        else:
            point = self._muscle_point()
        if point is None:
            return None
        bead = self._bead(point - self.origin, r, rng.uniform(1.0, 1.5), rng.uniform(0, math.pi))
        if anchor:
            bead = replace(bead, axes=(bead.axes[0], bead.axes[1], max(bead.axes[2], 0.8 * r)))
        return LesionObject(oid, "nodule", location, visit, years, _draw_growth(rng, False, anchor),
                            float(rng.uniform(0.9, 1.1)), [bead])

    def _chain_beads(self, path: int, s0: float, length: float, r0: float) -> list[Bead]:
        rng = self.rng
        wavelength, phase = rng.uniform(40, 150), rng.uniform(0, 2 * math.pi)
        jitter = rng.uniform(2, 6)
        beads, s = [], s0
        while s <= s0 + length:
            pos, angle = self.paths.point(path, s)
            r = float(np.clip(r0 * (1 + 0.35 * math.sin(2 * math.pi * s / wavelength + phase)), 4.0, 35.0))
            offset = rng.uniform(-jitter, jitter, size=3) * np.array([math.sin(angle), math.cos(angle), 1.0])
            beads.append(self._bead(pos + offset, r, rng.uniform(1.2, 2.0), angle))
            s += rng.uniform(0.5, 0.9) * max(r, self.min_radius)
        return beads

    def chain(self, oid: int, visit: int, years: float, max_length: float) -> LesionObject:
        """A plexiform chain along a nerve segment of 40..``max_length`` mm (branches with p 0.2)."""
        rng = self.rng
        i = int(rng.choice(len(self.paths.paths), p=self.paths.weights))
        length = min(rng.uniform(40, max_length), self.paths.length(i))
        s0 = rng.uniform(0, self.paths.length(i) - length)
        r0 = _log_uniform(rng, 5.0, 12.0) if max_length <= 120 else _log_uniform(rng, 6.0, 25.0)
        beads = self._chain_beads(i, s0, length, r0)
        if rng.random() < 0.2:
            j = int(rng.choice(len(self.paths.paths), p=self.paths.weights))
            end, _ = self.paths.point(i, s0 + length)
            sj = self.paths.nearest(j, end)
            lj = min(rng.uniform(40, max(40.0, length)), self.paths.length(j))
            beads += self._chain_beads(j, max(0.0, min(sj, self.paths.length(j) - lj)), lj, r0)
        return LesionObject(oid, "plexiform", "nerve", visit, years, _draw_growth(rng, True, False),
                            float(rng.uniform(0.9, 1.1)), beads)


def count_components(mask: np.ndarray) -> int:
    """Number of 26-connected components of a boolean mask."""
    return int(cc3d.connected_components(mask, connectivity=26, return_N=True)[1])
