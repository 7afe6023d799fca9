"""Analytic shapes in physical millimetres, evaluated as anterior-posterior intervals over an in-plane grid.

Coordinates are canonical millimetres: ``z`` = distance below the top of the field of view (rows, S->I), ``x`` =
distance from the right edge (columns, R->L), ``y`` = distance from the posterior edge (frames, P->A).

Every shape is convex along ``y``: for in-plane points ``(z, x)`` it returns the interval ``[yc - h, yc + h]`` it
occupies (``h == 0`` outside). The occupancy of a coronal slab is then the exact overlap length divided by the slab
thickness -- no supersampling across the slice is needed (see ``render.Canvas.occupancy``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from mois_sam2_nf.data.view import triple

Interval = tuple[np.ndarray | float, np.ndarray]


@dataclass(frozen=True)
class Box:
    """Axis-aligned bounds in mm: ``z0 <= z <= z1``, ``x0 <= x <= x1``, ``y0 <= y <= y1``."""

    z0: float
    z1: float
    x0: float
    x1: float
    y0: float
    y1: float


def _half_width(h: np.ndarray, ry: np.ndarray | np.floating | float, q: np.ndarray) -> np.ndarray:
    """``ry * sqrt(max(0, 1 - q))`` written into ``h`` (``q`` = squared normalised in-plane radius)."""
    np.subtract(1.0, q, out=h)
    np.clip(h, 0.0, None, out=h)
    np.sqrt(h, out=h)
    h *= ry
    return h


@dataclass(frozen=True)
class Ellipsoid:
    """Ellipsoid rotated in the coronal plane, optionally with a wavy boundary.

    Attributes:
        center: ``(z, x, y)`` mm.
        axes: semi-axes ``(a_u, a_v, a_y)`` mm; ``u`` is the in-plane axis at ``angle`` from +z towards +x.
        angle: in-plane rotation (radians).
        harmonics: ``(order, relative amplitude, phase)`` terms modulating the in-plane radius.
    """

    center: tuple[float, float, float]
    axes: tuple[float, float, float]
    angle: float = 0.0
    harmonics: tuple[tuple[int, float, float], ...] = field(default=())

    def box(self) -> Box:
        au, av, ay = self.axes
        grow = 1.0 + sum(abs(a) for _, a, _ in self.harmonics)
        c, s = np.cos(self.angle), np.sin(self.angle)
        hz = float(np.hypot(au * c, av * s)) * grow
        hx = float(np.hypot(au * s, av * c)) * grow
        z, x, y = self.center
        return Box(z - hz, z + hz, x - hx, x + hx, y - ay, y + ay)

    def interval(self, z: np.ndarray, x: np.ndarray) -> Interval:
        """``z`` ``(n, 1)``, ``x`` ``(1, m)`` float32 -> ``(yc, h)`` with ``h`` ``(n, m)`` float32."""
        au, av, ay = self.axes
        dz = z - np.float32(self.center[0])
        dx = x - np.float32(self.center[1])
        c, s = np.float32(np.cos(self.angle)), np.float32(np.sin(self.angle))
        u = (dz * c + dx * s) / np.float32(au)
        v = (dx * c - dz * s) / np.float32(av)
        q: np.ndarray = u * u + v * v
        if self.harmonics:
            phi = np.arctan2(v, u)
            mod = np.ones_like(q)
            for order, amp, phase in self.harmonics:
                mod += np.float32(amp) * np.cos(order * phi + np.float32(phase))
            q /= mod * mod
        return float(self.center[2]), _half_width(q, np.float32(ay), q)

    def shrunk(self, t: float) -> Ellipsoid:
        """Inner shape ``t`` mm inside the surface (semi-axes at least 1 mm)."""
        return replace(self, axes=triple(max(1.0, a - t) for a in self.axes))

    def scaled(self, f: float) -> Ellipsoid:
        """Same centre, semi-axes times ``f``."""
        return replace(self, axes=triple(a * f for a in self.axes))


@dataclass(frozen=True)
class Tube:
    """Union of tapered capsules along a polyline with elliptic cross-section.

    Attributes:
        points: ``(k, 3)`` polyline vertices ``(z, x, y)`` mm (``k >= 2``).
        radii: ``(k,)`` in-plane radius at each vertex (linearly interpolated along segments).
        depth_ratio: anterior-posterior semi-axis = ``radius * depth_ratio``.
    """

    points: tuple[tuple[float, float, float], ...]
    radii: tuple[float, ...]
    depth_ratio: float = 1.0

    def box(self) -> Box:
        p = np.asarray(self.points)
        r = max(self.radii)
        ry = r * self.depth_ratio
        return Box(p[:, 0].min() - r, p[:, 0].max() + r, p[:, 1].min() - r, p[:, 1].max() + r,
                   p[:, 2].min() - ry, p[:, 2].max() + ry)

    def interval(self, z: np.ndarray, x: np.ndarray) -> Interval:
        """``z`` ``(n, 1)``, ``x`` ``(1, m)`` float32 -> ``(yc, h)`` both ``(n, m)`` float32 (widest segment wins)."""
        best_h = np.zeros(np.broadcast_shapes(z.shape, x.shape), dtype=np.float32)
        best_y = np.zeros_like(best_h)
        for (p0, p1), (r0, r1) in zip(zip(self.points[:-1], self.points[1:]), zip(self.radii[:-1], self.radii[1:])):
            sz, sx = np.float32(p1[0] - p0[0]), np.float32(p1[1] - p0[1])
            length2 = max(float(sz * sz + sx * sx), 1e-6)
            rz, rx = z - np.float32(p0[0]), x - np.float32(p0[1])
            t = (rz * sz + rx * sx) / np.float32(length2)
            np.clip(t, 0.0, 1.0, out=t)
            ez, ex = rz - t * sz, rx - t * sx
            r = np.float32(r0) + t * np.float32(r1 - r0)
            q = (ez * ez + ex * ex) / (r * r)
            h = _half_width(q, r * np.float32(self.depth_ratio), q)
            better = h > best_h
            np.copyto(best_h, h, where=better)
            np.copyto(best_y, np.float32(p0[2]) + t * np.float32(p1[2] - p0[2]), where=better)
        return best_y, best_h

    def shrunk(self, t: float) -> Tube:
        """Inner tube ``t`` mm inside the surface (radii at least 1 mm, same depth ratio)."""
        return replace(self, radii=tuple(max(1.0, r - t) for r in self.radii))


@dataclass(frozen=True)
class Profile:
    """Tapered elliptic cylinder along S-I (the trunk): axial cross-sections are ellipses.

    Attributes:
        z_knots: ``(k,)`` increasing row positions (mm); the shape spans ``z_knots[0]..z_knots[-1]``.
        half_width: ``(k,)`` R-L semi-axis at each knot (mm).
        half_depth: ``(k,)`` A-P semi-axis at each knot (mm).
        x_center / y_center: axis position (mm).
    """

    z_knots: tuple[float, ...]
    half_width: tuple[float, ...]
    half_depth: tuple[float, ...]
    x_center: float
    y_center: float

    def box(self) -> Box:
        a, b = max(self.half_width), max(self.half_depth)
        return Box(self.z_knots[0], self.z_knots[-1], self.x_center - a, self.x_center + a,
                   self.y_center - b, self.y_center + b)

    def interval(self, z: np.ndarray, x: np.ndarray) -> Interval:
        """``z`` ``(n, 1)``, ``x`` ``(1, m)`` float32 -> ``(yc, h)`` with ``h`` ``(n, m)`` float32."""
        zz = z.astype(np.float64)
        a = np.interp(zz, self.z_knots, self.half_width).astype(np.float32)
        b = np.interp(zz, self.z_knots, self.half_depth).astype(np.float32)
        inside = (zz >= self.z_knots[0]) & (zz <= self.z_knots[-1])
        b = np.where(inside, b, np.float32(0.0))
        q = (x - np.float32(self.x_center)) / a
        q = q * q
        return float(self.y_center), _half_width(q, b, q)

    def shrunk(self, t: float) -> Profile:
        """Inner profile ``t`` mm inside the surface (same length)."""
        return replace(self, half_width=tuple(max(1.0, a - t) for a in self.half_width),
                       half_depth=tuple(max(1.0, b - t) for b in self.half_depth))


Shape = Ellipsoid | Tube | Profile
