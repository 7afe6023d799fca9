"""Rendering: partial-volume occupancy, intensity mixing, bias field, stations, Rician noise and on-disk orientation.

All volumes here are canonical ``(H, W, F)`` arrays (rows S->I, columns R->L, frames P->A); voxel ``(r, c, f)``
covers ``[r*dr, (r+1)*dr) x [c*dc, (c+1)*dc) x [f*df, (f+1)*df)`` in scan millimetres (see ``primitives``).
Shapes are evaluated only inside their bounding boxes (docs/synthetic_data.md, Rendering).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import nibabel.orientations as nio
import numpy as np
from scipy.ndimage import gaussian_filter

from mois_sam2_nf.data.synthetic.presets import Geometry, Site
from mois_sam2_nf.data.synthetic.primitives import Shape
from mois_sam2_nf.data.view import CANONICAL_CODES

Region = tuple[tuple[slice, slice, slice], np.ndarray]
#: tissue id of partial-volume voxels in :meth:`Canvas.pure_tissue`
MIXED = 255


class Canvas:
    """Mutable canonical volumes of one scan while its structures are painted.

    Attributes:
        image: float32 signal relative to muscle (before texture, bias and noise).
        tissue: uint8 id of the dominant tissue of each voxel (``anatomy.TISSUES``; 0 = air); see :meth:`pure_tissue`.
        share: float32 fraction of the voxel covered by its dominant tissue (approximate: earlier tissues are
            covered proportionally by later ones).
        body / forbidden / lesion: bool masks: inside the body, touched by a structure lesions must avoid, lesion
            label (occupancy >= 0.5).
    """

    def __init__(self, geometry: Geometry, supersample: int) -> None:
        self.geometry = geometry
        self.supersample = supersample
        shape = geometry.shape
        self.image = np.zeros(shape, dtype=np.float32)
        self.tissue = np.zeros(shape, dtype=np.uint8)
        self.share = np.ones(shape, dtype=np.float32)
        self.body = np.zeros(shape, dtype=bool)
        self.forbidden = np.zeros(shape, dtype=bool)
        self.lesion = np.zeros(shape, dtype=bool)

    def region(self, shape: Shape, pad: int = 0) -> Region | None:
        """Occupancy of ``shape`` in its bounding box (grown by ``pad`` voxels), or ``None`` outside the grid.

        Returns ``(slices, occ)``: canonical slices and float32 occupancy in [0, 1] of the same box. Across the slice
        the occupancy is the exact overlap of the shape's A-P interval with each slab; in-plane it is averaged over
        ``supersample``^2 sub-pixels.
        """
        (h, w, nf), (dr, dc, df) = self.geometry.shape, self.geometry.spacing
        b = shape.box()
        r0, r1 = max(0, math.floor(b.z0 / dr) - pad), min(h, math.ceil(b.z1 / dr) + pad)
        c0, c1 = max(0, math.floor(b.x0 / dc) - pad), min(w, math.ceil(b.x1 / dc) + pad)
        f0, f1 = max(0, math.floor(b.y0 / df) - pad), min(nf, math.ceil(b.y1 / df) + pad)
        if r0 >= r1 or c0 >= c1 or f0 >= f1:
            return None
        s = self.supersample
        zs = ((np.arange(r0 * s, r1 * s) + 0.5) * (dr / s)).astype(np.float32)[:, None]
        xs = ((np.arange(c0 * s, c1 * s) + 0.5) * (dc / s)).astype(np.float32)[None, :]
        yc, half = shape.interval(zs, xs)
        lo = (yc - half)[..., None]
        hi = (yc + half)[..., None]
        edges = (np.arange(f0, f1 + 1) * df).astype(np.float32)
        occ = np.minimum(hi, edges[1:]) - np.maximum(lo, edges[:-1])
        np.clip(occ, 0.0, None, out=occ)
        occ *= np.float32(1.0 / df)
        if s > 1:
            occ = occ.reshape(r1 - r0, s, c1 - c0, s, f1 - f0).mean(axis=(1, 3), dtype=np.float32)
        return (slice(r0, r1), slice(c0, c1), slice(f0, f1)), occ

    def paint(self, region: Region, value: float, tissue_id: int) -> None:
        """Alpha-mix ``value`` into the box with the region's occupancy; the tissue takes over where it dominates."""
        sl, occ = region
        img = self.image[sl]
        img += occ * (np.float32(value) - img)
        share = self.share[sl]
        share *= 1 - occ
        self.tissue[sl][occ >= share] = tissue_id
        np.maximum(share, occ, out=share)

    def pure_tissue(self, purity: float = 0.75) -> np.ndarray:
        """Tissue ids where the dominant tissue covers at least ``purity`` of the voxel, :data:`MIXED` elsewhere."""
        return np.where(self.share >= purity, self.tissue, np.uint8(MIXED))


class SmoothField:
    """Random smooth field in [-1, 1]: Gaussian-filtered noise on a coarse grid, linearly interpolated per voxel.

    The coarse grid has spacing ``cell_mm``; the filter has sigma = one cell. Interpolation along columns and frames
    is done once; rows are interpolated on demand (:meth:`rows`) so the full-size field never exists at once.
    """

    def __init__(self, rng: np.random.Generator, geometry: Geometry, cell_mm: float) -> None:
        counts = [int(math.ceil(fov / cell_mm)) + 2 for fov in geometry.fov_mm]
        coarse = gaussian_filter(rng.standard_normal(counts), 1.0, mode="nearest")
        coarse /= max(float(np.abs(coarse).max()), 1e-12)
        self._axes = [self._weights(n, d, cell_mm, len_c)
                      for n, d, len_c in zip(geometry.shape, geometry.spacing, counts)]
        (_, _), (ic, wc), (iff, wf) = self._axes
        along_f = coarse[:, :, iff] * (1 - wf) + coarse[:, :, iff + 1] * wf
        self._cf = (along_f[:, ic] * (1 - wc)[:, None] + along_f[:, ic + 1] * wc[:, None]).astype(np.float32)

    @staticmethod
    def _weights(n: int, spacing: float, cell: float, n_coarse: int) -> tuple[np.ndarray, np.ndarray]:
        pos = (np.arange(n) + 0.5) * spacing / cell
        i0 = np.minimum(np.floor(pos).astype(np.int64), n_coarse - 2)
        return i0, (pos - i0).astype(np.float32)

    def rows(self, r0: int, r1: int) -> np.ndarray:
        """Field values of rows ``r0:r1``, shape ``(r1 - r0, W, F)`` float32."""
        i0, w = self._axes[0][0][r0:r1], self._axes[0][1][r0:r1, None, None]
        return self._cf[i0] * (1 - w) + self._cf[i0 + 1] * w


@dataclass(frozen=True)
class Acquisition:
    """Per-scan acquisition draws (docs/synthetic_data.md, Sets and sites), all JSON-able."""

    snr: float
    lesion_contrast: float
    fat_ratio: float
    bias_amplitude: float
    bias_length_mm: float
    lr_gradient: float
    texture_sigma_mm: float
    texture_amplitude: float
    station_edges_mm: tuple[float, ...]
    station_gains: tuple[float, ...]
    station_blend_mm: float
    coverage_end_mm: float
    units: float

    def to_json(self) -> dict:
        """Plain dict for the manifest."""
        return asdict(self)


def draw_acquisition(rng: np.random.Generator, site: Site, geometry: Geometry, feet_z: float) -> Acquisition:
    """Draw one scan's acquisition parameters; coverage ends 20-80 mm below the feet (or at the FOV end)."""
    u = rng.uniform
    snr, contrast, fat = u(*site.snr), u(*site.lesion_contrast), u(*site.fat_ratio)
    bias_amp, bias_len = u(*site.bias_amplitude), u(200, 400)
    lr = u(-site.bias_lr_gradient, site.bias_lr_gradient) if site.bias_lr_gradient else 0.0
    texture_sigma, texture_amplitude = u(10, 30), u(0.05, 0.10)
    coverage = min(geometry.fov_mm[0], feet_z + u(20, 80))
    n = int(rng.integers(site.n_stations[0], site.n_stations[1] + 1))
    gains = tuple(1.0 + float(rng.choice((-1.0, 1.0))) * u(*site.station_gain_step) for _ in range(n))
    edges = tuple(float(e) for e in np.linspace(0.0, coverage, n + 1))
    return Acquisition(snr, contrast, fat, bias_amp, bias_len, lr, texture_sigma, texture_amplitude, edges, gains,
                       site.station_blend_mm, coverage, u(*site.units))


def station_profile(acq: Acquisition, geometry: Geometry) -> np.ndarray:
    """Per-row gain ``(H,)`` float32: station gains blended linearly across each boundary; 0 beyond coverage."""
    dr = geometry.spacing[0]
    z = (np.arange(geometry.shape[0]) + 0.5) * dr
    knots, values = [0.0], [acq.station_gains[0]]
    for edge, before, after in zip(acq.station_edges_mm[1:-1], acq.station_gains[:-1], acq.station_gains[1:]):
        knots += [edge - acq.station_blend_mm / 2, edge + acq.station_blend_mm / 2]
        values += [before, after]
    gain = np.interp(z, knots, values)
    gain[z > acq.coverage_end_mm] = 0.0
    return gain.astype(np.float32)


def finalize(canvas: Canvas, acq: Acquisition, rng_fields: np.random.Generator, rng_noise: np.random.Generator,
             dtype: str, row_chunk: int) -> np.ndarray:
    """Texture, bias field, station gains, Rician noise, coverage and storage units; returns canonical ``dtype``.

    Texture is one smooth multiplicative field (sigma ``texture_sigma_mm``, +-``texture_amplitude``) over all tissues.

    ``|S + n1 + i n2|`` with ``n ~ N(0, 1/SNR^2)``; voxels outside station coverage are exactly 0; ``int16`` output
    is rounded and clipped to [0, 32767].
    """
    geometry = canvas.geometry
    texture = SmoothField(rng_fields, geometry, acq.texture_sigma_mm)
    bias = SmoothField(rng_fields, geometry, acq.bias_length_mm / 2)
    gain = station_profile(acq, geometry)
    x = (np.arange(geometry.shape[1]) + 0.5) / geometry.shape[1]
    lr = (1.0 + acq.lr_gradient * (2 * x - 1)).astype(np.float32)[None, :, None]
    sigma = np.float32(1.0 / acq.snr)
    out = np.empty(geometry.shape, dtype=np.dtype(dtype))
    for r0 in range(0, geometry.shape[0], row_chunk):
        r1 = min(geometry.shape[0], r0 + row_chunk)
        sig = texture.rows(r0, r1)
        sig *= np.float32(acq.texture_amplitude)
        sig += 1
        sig *= canvas.image[r0:r1]
        sig *= 1 + np.float32(acq.bias_amplitude) * bias.rows(r0, r1)
        sig *= lr
        sig *= gain[r0:r1, None, None]
        noise = rng_noise.standard_normal((2, *sig.shape), dtype=np.float32)
        noise *= sigma
        sig += noise[0]
        np.hypot(sig, noise[1], out=sig)
        sig[gain[r0:r1] == 0] = 0
        sig *= np.float32(acq.units)
        if out.dtype == np.int16:
            np.rint(sig, out=sig)
            np.clip(sig, 0, 32767, out=sig)
        out[r0:r1] = sig
    return out


def canonical_affine(geometry: Geometry) -> np.ndarray:
    """``(4, 4)`` canonical voxel ``(row, col, frame)`` -> world RAS+ affine, grid centre at the world origin."""
    dr, dc, df = geometry.spacing
    affine = np.eye(4)
    affine[:3, :3] = np.array([[0.0, -dc, 0.0], [0.0, 0.0, df], [-dr, 0.0, 0.0]])
    affine[:3, 3] = -affine[:3, :3] @ ((np.asarray(geometry.shape) - 1) / 2.0)
    return affine


def to_disk(canonical: np.ndarray, geometry: Geometry, axcodes: tuple[str, str, str]) -> tuple[np.ndarray, np.ndarray]:
    """Reorient a canonical array to the on-disk axis codes; returns ``(array view, affine)`` (same world positions)."""
    ornt = nio.ornt_transform(nio.axcodes2ornt(CANONICAL_CODES), nio.axcodes2ornt(axcodes))
    array = nio.apply_orientation(canonical, ornt)
    affine = canonical_affine(geometry) @ nio.inv_ornt_aff(ornt, canonical.shape)
    return array, affine
