"""Body model: per-patient anatomy draws and their realisation as ordered tissue layers.

Described in docs/synthetic_data.md, Anatomy.

Two frames of reference (both millimetres, canonical axis directions, see ``primitives``):

- *body frame*: origin at the vertex (top of the head) on the body mid-line and the body's A-P centre. Anatomy
  draws, nerve paths and lesions live here, so they follow the patient between visits.
- *scan frame*: origin at the top / right / posterior corner of the field of view. ``Body.origin`` is the body-frame
  origin in scan coordinates for one visit (it carries the rigid shift of that visit).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from mois_sam2_nf.data.synthetic.primitives import Ellipsoid, Profile, Shape, Tube

#: tissue name -> id in the tissue map (uint8); "lesion" covers lesion and target-sign core
TISSUES: dict[str, int] = {
    name: i for i, name in enumerate((
        "air", "fat", "muscle", "marrow", "brain", "csf", "bladder", "kidney", "joint_fluid", "bowel", "fluid",
        "lymph_node", "spleen", "liver", "disc", "lung", "vessel", "lesion",
    ))
}
#: bright non-lesion structures (always label 0)
DISTRACTORS: frozenset[str] = frozenset({"csf", "bladder", "kidney", "joint_fluid", "bowel", "fluid", "lymph_node"})
#: structures a lesion may never overlap
FORBIDDEN: frozenset[str] = DISTRACTORS | {"lung"}

#: tissue -> (low, high) intensity relative to muscle (fat/marrow come from the site table per scan)
INTENSITY_RANGES: dict[str, tuple[float, float]] = {
    "brain": (1.3, 1.8), "csf": (4.0, 6.0), "bladder": (5.0, 7.0), "kidney": (2.0, 3.0), "joint_fluid": (3.5, 6.0),
    "bowel": (1.0, 2.5), "fluid": (2.5, 4.5), "lymph_node": (1.8, 2.8), "spleen": (1.5, 2.0), "liver": (0.6, 0.9),
    "disc": (1.5, 2.5), "lung": (0.05, 0.2), "vessel": (0.2, 0.5),
}

Point = tuple[float, float, float]


@dataclass(frozen=True)
class Anatomy:
    """Per-patient draws (JSON-able); lengths in mm, positions of small structures in the body frame."""

    height: float
    top_gap: float
    ap_offset: float
    fat_factor: float
    trunk_fat: float
    limb_fat: float
    trunk_half_width: float
    trunk_depth: float
    neck_radius: float
    has_arms: bool
    arm_radius: float
    thigh_radius: float
    calf_radius: float
    leg_gap: float
    canal_radius: float
    bladder_radius: float
    joints: dict[str, tuple[bool, bool]]
    lymph_nodes: tuple[tuple[Point, tuple[float, float, float]], ...]
    bowel: tuple[tuple[Point, tuple[float, float, float], float], ...]
    fluid_pockets: tuple[tuple[Point, tuple[float, float, float], float], ...]
    n_intercostal: int
    intensity: dict[str, float]

    def to_json(self) -> dict:
        """Plain dict for the manifest."""
        return asdict(self)


@dataclass(frozen=True)
class Frame:
    """Derived body-frame landmarks (mm) shared by the layers and the nerve paths."""

    h: float
    s: float
    hw: float
    hd: float
    y_spine: float
    leg_x: float
    arm_x: float

    def z(self, frac: float) -> float:
        """Row position of a landmark given as a fraction of the height from the vertex."""
        return frac * self.h


def _frame(a: Anatomy, fat_scale: float = 1.0) -> Frame:
    s = a.height / 1750.0
    extra = (a.fat_factor * fat_scale - 1.0) * 15.0
    hw = a.trunk_half_width * s + extra
    hd = a.trunk_depth / 2.0 + extra
    return Frame(h=a.height, s=s, hw=hw, hd=hd, y_spine=-0.55 * hd, leg_x=a.leg_gap / 2 + a.thigh_radius,
                 arm_x=hw + 0.9 * a.arm_radius + 5.0)


def draw_anatomy(rng: np.random.Generator) -> Anatomy:
    """Draw one patient's anatomy (docs/synthetic_data.md, Anatomy)."""
    u = rng.uniform
    height = u(1300, 1950)
    s = height / 1750.0
    neck_radius = u(50, 65)
    trunk_half_width = u(140, 190)
    thigh = u(65, 90)
    gap = u(20, 60)
    trunk_depth = u(180, 280)
    hw, hd = trunk_half_width * s, trunk_depth / 2
    joints = {name: (bool(rng.random() < p), bool(rng.random() < p))
              for name, p in (("shoulder", u(0.3, 0.7)), ("hip", u(0.3, 0.7)), ("knee", u(0.3, 0.7)))}
    nodes = []
    for _ in range(int(rng.integers(5, 26))):
        region, side = int(rng.integers(0, 3)), float(rng.choice((-1.0, 1.0)))
        if region == 0:
            c = (u(0.13, 0.18) * height, side * u(15, 0.8 * neck_radius), u(-0.2, 0.5) * neck_radius)
        elif region == 1:
            c = (u(0.21, 0.26) * height, side * (hw - u(5, 35)), u(-0.3, 0.3) * hd)
        else:
            c = (u(0.53, 0.57) * height, side * u(40, gap / 2 + thigh), u(0.1, 0.6) * hd * 0.7)
        d = u(5, 15) / 2
        nodes.append((c, (d * u(1.0, 1.6), d, d)))
    bowel = tuple(((u(0.43, 0.51) * height, u(-0.6, 0.6) * hw, u(-0.1, 0.6) * hd),
                   (u(12, 28), u(12, 28), u(12, 28)), u(*INTENSITY_RANGES["bowel"]))
                  for _ in range(int(rng.integers(6, 13))))
    pockets = tuple(((u(0.42, 0.52) * height, u(-0.5, 0.5) * hw, u(0.0, 0.5) * hd),
                     (u(6, 15), u(6, 15), u(6, 15)), u(*INTENSITY_RANGES["fluid"]))
                    for _ in range(int(rng.integers(1, 4))))
    return Anatomy(
        height=height, top_gap=u(20, 60), ap_offset=u(-15, 15), fat_factor=u(0.6, 1.6), trunk_fat=u(10, 25),
        limb_fat=u(5, 12), trunk_half_width=trunk_half_width, trunk_depth=trunk_depth, neck_radius=neck_radius,
        has_arms=bool(rng.random() < 0.7), arm_radius=u(35, 50), thigh_radius=thigh, calf_radius=u(40, 60),
        leg_gap=gap, canal_radius=u(7, 9), bladder_radius=u(25, 60), joints=joints, lymph_nodes=tuple(nodes),
        bowel=bowel, fluid_pockets=pockets, n_intercostal=int(rng.integers(6, 11)),
        intensity={k: u(*r) for k, r in INTENSITY_RANGES.items()},
    )


@dataclass(frozen=True)
class Layer:
    """One painted structure: ``tissue`` name, its shape in scan coordinates, an optional intensity override.

    ``body`` marks the outer body surface (used to keep lesions inside the patient).
    """

    tissue: str
    shape: Shape
    value: float | None = None
    body: bool = False


@dataclass(frozen=True)
class Body:
    """One visit's realised body.

    Attributes:
        origin: body-frame origin in scan coordinates ``(z, x, y)`` mm.
        layers: structures in painting order (later layers cover earlier ones).
        surfaces: outer shapes (scan coordinates) where cutaneous lesions may sit.
        muscles: inner muscle shapes (scan coordinates) for intramuscular lesions.
        feet_z: row position (mm) of the soles.
    """

    origin: Point
    layers: list[Layer] = field(default_factory=list)
    surfaces: list[Shape] = field(default_factory=list)
    muscles: list[Shape] = field(default_factory=list)
    feet_z: float = 0.0


def build_body(a: Anatomy, fov_mm: tuple[float, float, float], shift: Point, fat_scale: float) -> Body:
    """Realise ``a`` in a field of view of ``fov_mm`` (S-I, R-L, A-P), shifted by ``shift`` (mm)."""
    f = _frame(a, fat_scale)
    origin = (a.top_gap + shift[0], fov_mm[1] / 2 + shift[1], fov_mm[2] / 2 + a.ap_offset + shift[2])

    def p(z: float, x: float, y: float) -> Point:
        return (z + origin[0], x + origin[1], y + origin[2])

    z, s, hw, hd, ysp = f.z, f.s, f.hw, f.hd, f.y_spine
    trunk_fat = a.trunk_fat * a.fat_factor * fat_scale
    limb_fat = a.limb_fat * a.fat_factor * fat_scale
    sides = (-1.0, 1.0)
    head = Ellipsoid(p(z(0.065), 0, 0), (110 * s, 75 * s, 95 * s))
    neck = Tube((p(z(0.10), 0, 0), p(z(0.20), 0, -10)), (a.neck_radius, a.neck_radius))
    trunk = Profile(
        tuple(z(t) + origin[0] for t in (0.17, 0.195, 0.24, 0.33, 0.41, 0.50, 0.56)),
        (a.neck_radius + 10, 0.92 * hw, hw, 0.96 * hw, 0.86 * hw, 0.97 * hw, 0.9 * hw),
        (a.neck_radius, 0.8 * hd, 0.95 * hd, hd, 0.95 * hd, 0.9 * hd, 0.75 * hd),
        origin[1], origin[2])
    tr, cr = a.thigh_radius, a.calf_radius
    legs = [Tube((p(z(0.50), sd * f.leg_x, 0), p(z(0.74), 0.85 * sd * f.leg_x, 5), p(z(0.80), 0.8 * sd * f.leg_x, -5),
                  p(z(0.955), 0.8 * sd * f.leg_x, -10)), (tr, 0.6 * tr, cr, 0.5 * cr)) for sd in sides]
    feet = [Ellipsoid(p(z(0.975), 0.8 * sd * f.leg_x, 30), (0.025 * f.h, 40, 100)) for sd in sides]
    ar = a.arm_radius
    arms = [Tube((p(z(0.20), 0.97 * sd * f.arm_x, 0), p(z(0.37), sd * f.arm_x, -5), p(z(0.52), sd * f.arm_x, 0),
                  p(z(0.57), sd * f.arm_x, 5)), (1.1 * ar, 0.8 * ar, 0.6 * ar, 0.55 * ar))
            for sd in sides] if a.has_arms else []
    limbs = [neck, *legs, *arms]
    body = Body(origin=origin, feet_z=origin[0] + a.height, surfaces=[trunk, *limbs],
                muscles=[trunk.shrunk(trunk_fat), *(t.shrunk(limb_fat) for t in legs + arms)])
    add = body.layers.append
    outer: tuple[Shape, ...] = (head, trunk, *limbs, *feet)
    for shape in outer:
        add(Layer("fat", shape, body=True))
    add(Layer("muscle", trunk.shrunk(trunk_fat)))
    for shape in limbs:
        add(Layer("muscle", shape.shrunk(limb_fat)))
    add(Layer("csf", head.shrunk(7.0)))
    add(Layer("brain", head.shrunk(10.0)))
    for sd in sides:
        add(Layer("csf", Ellipsoid(p(z(0.065) - 5, sd * 9, 0), (28 * s, 8, 28))))
    for sd in sides:
        add(Layer("marrow", Tube((p(z(0.51), sd * f.leg_x, 0), p(z(0.735), 0.85 * sd * f.leg_x, 5)), (13, 13))))
        add(Layer("marrow", Tube((p(z(0.75), 0.83 * sd * f.leg_x, 0), p(z(0.95), 0.8 * sd * f.leg_x, -8)), (11, 11))))
        if a.has_arms:
            add(Layer("marrow", Tube((p(z(0.21), 0.97 * sd * f.arm_x, 0), p(z(0.37), sd * f.arm_x, -5)), (10, 10))))
    add(Layer("marrow", Tube((p(z(0.12), 0, ysp + 10), p(z(0.55), 0, ysp + 5)), (17 * s, 17 * s))))
    for zd in np.arange(z(0.16), z(0.50), 26 * s):
        add(Layer("disc", Ellipsoid(p(float(zd), 0, ysp + 9), (3.5, 16 * s, 15))))
    add(Layer("csf", Tube((p(z(0.12), 0, ysp - 15), p(z(0.55), 0, ysp - 18)), (a.canal_radius, a.canal_radius))))
    for sd in sides:
        add(Layer("lung", Ellipsoid(p(z(0.30), sd * 0.5 * hw, -0.1 * hd), (0.08 * f.h, 0.38 * hw, 0.6 * hd))))
    add(Layer("vessel", Ellipsoid(p(z(0.315), 0.15 * hw, 0.3 * hd), (0.035 * f.h, 0.3 * hw, 0.35 * hd))))
    add(Layer("vessel", Tube((p(z(0.28), 0.1 * hw, 0.1 * hd), p(z(0.30), 0.08 * hw, ysp + 35),
                              p(z(0.50), 0.05 * hw, ysp + 35)), (11, 11, 10))))
    add(Layer("liver", Ellipsoid(p(z(0.385), -0.35 * hw, 0.05 * hd), (0.04 * f.h, 0.55 * hw, 0.7 * hd))))
    add(Layer("spleen", Ellipsoid(p(z(0.39), 0.6 * hw, -0.3 * hd), (0.03 * f.h, 0.22 * hw, 0.3 * hd))))
    for sd in sides:
        add(Layer("kidney", Ellipsoid(p(z(0.435), sd * 0.42 * hw, ysp + 30), (0.032 * f.h, 0.17 * hw, 0.2 * hd),
                                      angle=sd * 0.2)))
    for c, axes, value in a.bowel:
        add(Layer("bowel", Ellipsoid(p(*c), axes), value=value))
    for c, axes, value in a.fluid_pockets:
        add(Layer("fluid", Ellipsoid(p(*c), axes), value=value))
    rb = a.bladder_radius
    add(Layer("bladder", Ellipsoid(p(z(0.54), 0, min(0.45 * hd, hd - 0.9 * rb - 15)), (0.8 * rb, 1.1 * rb, 0.9 * rb))))
    joints = {
        "shoulder": lambda sd: Ellipsoid(p(z(0.195), sd * (hw - 15), 0), (9, 12, 14)),
        "hip": lambda sd: Ellipsoid(p(z(0.515), sd * (a.leg_gap / 2 + 0.6 * tr), 0), (10, 14, 16)),
        "knee": lambda sd: Ellipsoid(p(z(0.745), 0.85 * sd * f.leg_x, 10), (7, 22, 18)),
    }
    for name, make in joints.items():
        for sd, present in zip(sides, a.joints[name]):
            if present:
                add(Layer("joint_fluid", make(sd)))
    for c, axes in a.lymph_nodes:
        add(Layer("lymph_node", Ellipsoid(p(*c), axes)))
    for sd in sides:
        add(Layer("vessel", Tube((p(z(0.53), 0.8 * sd * f.leg_x, 0.3 * tr), p(z(0.73), 0.9 * sd * f.leg_x, -0.3 * tr)),
                                 (4, 4))))
    return body


def nerve_paths(a: Anatomy) -> list[np.ndarray]:
    """Nerve polylines of both sides in the body frame, each ``(k, 3)`` float64 ``(z, x, y)`` mm (see lesions)."""
    f = _frame(a)
    z, hw, hd, ysp = f.z, f.hw, f.hd, f.y_spine
    tr, cr = a.thigh_radius, a.calf_radius
    paths: list[list[Point]] = []
    for sd in (-1.0, 1.0):
        brachial = [(z(0.17), sd * 15, ysp), (z(0.21), sd * (hw - 20), 0.0)]
        if a.has_arms:
            xa = sd * (f.arm_x - 0.5 * a.arm_radius)
            brachial += [(z(0.24), xa, 0.0), (z(0.40), xa, -5.0)]
        paths.append(brachial)
        paths.append([(z(0.47), sd * 30, ysp + 10), (z(0.53), sd * (a.leg_gap / 2 + 0.8 * tr), -0.3 * tr),
                      (z(0.73), 0.9 * sd * f.leg_x, -0.35 * tr), (z(0.93), 0.8 * sd * f.leg_x, -0.3 * cr)])
        paths.append([(z(0.50), sd * (a.leg_gap / 2 + 0.7 * tr), 0.4 * tr), (z(0.65), 0.95 * sd * f.leg_x, 0.45 * tr)])
        for zi in np.linspace(z(0.22), z(0.40), a.n_intercostal):
            paths.append([(zi, sd * 20, ysp), (zi + 15, sd * 0.6 * hw, -0.3 * hd), (zi + 35, sd * (hw - 15), 0.1 * hd)])
        paths.append([(z(0.13), sd * 28, ysp - 5), (z(0.55), sd * 32, ysp - 5)])
        paths.append([(z(0.10), sd * 15, 0.0), (z(0.16), sd * (a.neck_radius - 10), 10.0)])
    return [np.asarray(path, dtype=np.float64) for path in paths]
