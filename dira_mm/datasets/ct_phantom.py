"""Procedural chest-CT phantoms in Hounsfield units, with nodules at known positions.

They are the shipped data of the 3-D demo and of the 3-D downstream tasks (nodule segmentation
and classification) and a cheap, labelled volume for tests. Hand-written: no installed package
ships a chest CT volume (see ``docs/demo3d_data.md``), and MONAI's ``create_test_image_3d``
draws spheres, not anatomy.

A phantom is painted in a frame normalised to the volume (RAS+ voxel axes ``(X, Y, Z)``):
``u`` across (-1 patient's left .. +1 patient's right), ``v`` back to front (-1 posterior ..
+1 anterior), ``w`` feet to head (0 .. 1). Tissues, in painting order, with their HU:

- air outside the body: -1000;
- body (an elliptic cylinder): a subcutaneous fat layer (~-100) around muscle (~40); under the
  diaphragm domes the abdomen (liver ~60 on the right, soft tissue ~40);
- mediastinum: fat (~-80) with the heart (~40), the descending aorta (~45) and the trachea
  (air) in the upper part;
- two lungs (~-860, denser posteriorly, with a smooth texture), narrowing to the apices,
  the left one indented by the heart;
- branching vessels in the lungs (~40 HU tubes tapering from ~2.5 mm to sub-voxel, drawn with
  partial volume), three trees per lung from the hilum;
- spine (vertebral bodies: cancellous ~450 inside a cortical rim ~950, discs ~80, spinal canal
  ~15, spinous process ~700) and ribs (~700) around the body wall;
- nodules in the lungs: ellipsoids (``smooth``), ellipsoids with lobes (``lobulated``) or with
  spicules (``spiculated``), of solid or part-solid density (-100 .. 60 HU); their masks and
  records (centre voxel, world mm, diameter, label) are returned;
- correlated Gaussian noise (std 10-20 HU); values are rounded to whole HU.

**Label rule** (``malignant``, 0/1): a nodule is malignant when it is spiculated **or** its
diameter is at least ``MALIGNANT_DIAMETER_MM`` (10 mm), else benign. The diameter is the
equivalent-sphere diameter of the nodule's core ellipsoid (spicules and lobes not counted).
With the defaults (4-12 mm, a quarter spiculated) about 45 % of the nodules are malignant.

Nodules are point-symmetric about their centre voxel (spicules come in opposite pairs, lobes are
even functions of the direction), so the centroid of a nodule's mask is its recorded centre.

Everything is numpy, vectorised: a 96 x 96 x 48 phantom takes ~0.1 s (one core).
"""
from typing import List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
from scipy import ndimage

__all__ = [
    'CT_TISSUES', 'NODULE_SHAPES', 'MALIGNANT_DIAMETER_MM', 'CTPhantom', 'nodule_is_malignant',
    'ct_phantom_affine', 'sample_ct_phantom_params', 'render_ct_phantom', 'generate_ct_phantom',
    'ras_to_lps', 'world_to_voxel', 'voxel_to_world'
]

#: Tissue codes of ``CTPhantom.tissue`` (index = code).
CT_TISSUES = ('air', 'fat', 'soft_tissue', 'lung', 'bone', 'vessel', 'nodule')
#: Nodule shapes, in the order of their codes.
NODULE_SHAPES = ('smooth', 'lobulated', 'spiculated')
#: Diameter (mm) from which a nodule is malignant whatever its shape (see the module docstring).
MALIGNANT_DIAMETER_MM = 10.0

SeedLike = Union[int, Sequence[int], np.random.Generator]

_AIR, _FAT, _SOFT, _LUNG, _BONE, _VESSEL, _NODULE = range(7)


class CTPhantom(NamedTuple):
    """One phantom: ``volume`` float32 ``(X, Y, Z)`` HU in RAS+, ``mask`` uint8 (1 = nodule),
    ``nodules`` (list of records), ``affine`` (4 x 4 RAS, mm), ``tissue`` (uint8 codes of
    :data:`CT_TISSUES`)."""
    volume: np.ndarray
    mask: np.ndarray
    nodules: List[dict]
    affine: np.ndarray
    tissue: np.ndarray


def nodule_is_malignant(diameter_mm: float, shape: str) -> int:
    """The label rule: 1 when ``shape`` is spiculated or ``diameter_mm >= 10``, else 0."""
    return int(shape == 'spiculated' or float(diameter_mm) >= MALIGNANT_DIAMETER_MM)


def _as_rng(seed: SeedLike) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


# ---------------------------------------------------------------------------- coordinates


def ct_phantom_affine(shape: Sequence[int], spacing: Sequence[float],
                      origin: Optional[Sequence[float]] = None) -> np.ndarray:
    """The RAS+ affine of a phantom: diagonal ``spacing``, voxel ``(0, 0, 0)`` at ``origin``
    (default: the volume centred on the world origin)."""
    shape = np.asarray(shape, dtype=np.float64)
    spacing = np.asarray(spacing, dtype=np.float64)
    if origin is None:
        origin = -(shape - 1) / 2 * spacing
    affine = np.eye(4)
    affine[:3, :3] = np.diag(spacing)
    affine[:3, 3] = origin
    return affine


def voxel_to_world(affine: np.ndarray, ijk: Sequence[float]) -> np.ndarray:
    """Voxel indices ``(..., 3)`` -> world mm through ``affine`` (in its frame, RAS here)."""
    ijk = np.asarray(ijk, dtype=np.float64)
    return ijk @ np.asarray(affine)[:3, :3].T + np.asarray(affine)[:3, 3]


def world_to_voxel(affine: np.ndarray, xyz: Sequence[float]) -> np.ndarray:
    """World mm ``(..., 3)`` (frame of ``affine``) -> continuous voxel indices."""
    inv = np.linalg.inv(np.asarray(affine, dtype=np.float64))
    return np.asarray(xyz, dtype=np.float64) @ inv[:3, :3].T + inv[:3, 3]


def ras_to_lps(xyz: Sequence[float]) -> np.ndarray:
    """RAS mm <-> LPS mm (ITK's world frame, the one of LUNA16's CSV files): negate x and y.
    The map is its own inverse."""
    out = np.array(xyz, dtype=np.float64)
    out[..., :2] *= -1
    return out


# ---------------------------------------------------------------------------- parameters


def sample_ct_phantom_params(seed: SeedLike,
                             shape: Sequence[int] = (96, 96, 48),
                             spacing: Sequence[float] = (1.0, 1.0, 2.5),
                             num_nodules: Tuple[int, int] = (1, 3),
                             nodule_diameter: Tuple[float, float] = (4.0, 12.0),
                             shape_probs: Sequence[float] = (0.5, 0.25, 0.25),
                             noise_std: Tuple[float, float] = (10.0, 20.0),
                             origin_jitter: float = 20.0) -> dict:
    """Draw the anatomy, vessels and nodules of one phantom (plain, JSON-serialisable values).

    Args:
        seed (int | Sequence[int] | np.random.Generator): Seed (or generator) of the draws.
        shape (tuple[int, int, int]): Voxels along X, Y, Z (each >= 16). Defaults to
            (96, 96, 48).
        spacing (tuple[float, float, float]): Voxel size in mm. Defaults to (1, 1, 2.5).
        num_nodules (tuple[int, int]): Inclusive range of the number of nodules drawn; fewer
            are kept when the lungs have no room (never fewer than one unless the lungs are
            too small for a 2-voxel nodule). Defaults to (1, 3).
        nodule_diameter (tuple[float, float]): Range of the core diameter in mm; a diameter
            that does not fit the lung is shrunk (by 0.85 per failed round). Defaults to
            (4, 12).
        shape_probs (Sequence[float]): Probabilities of ``smooth``, ``lobulated``,
            ``spiculated``. Defaults to (0.5, 0.25, 0.25).
        noise_std (tuple[float, float]): Range of the noise std in HU. Defaults to (10, 20).
        origin_jitter (float): The volume centre is shifted from the world origin by up to
            this many mm per axis (so world and voxel coordinates differ). Defaults to 20.

    Returns:
        dict: ``shape``, ``spacing``, ``origin``, the anatomy, ``vessels`` (segments) and
        ``nodules`` (``center`` voxel, ``diameter_mm``, ``axes``, ``rotation``, ``shape``,
        ``hu``, ``spikes``/``lobes`` and ``malignant``).
    """
    shape = tuple(int(s) for s in shape)
    spacing = tuple(float(s) for s in spacing)
    if len(shape) != 3 or min(shape) < 16:
        raise ValueError(f'sample_ct_phantom_params: shape must be 3 sizes >= 16, got {shape}.')
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f'sample_ct_phantom_params: spacing must be 3 positive mm values, got '
                         f'{spacing}.')
    if not 0 <= num_nodules[0] <= num_nodules[1]:
        raise ValueError(f'sample_ct_phantom_params: num_nodules must be (low, high) with '
                         f'0 <= low <= high, got {num_nodules}.')
    probs = np.asarray(shape_probs, dtype=np.float64)
    if probs.shape != (3, ) or probs.min() < 0 or probs.sum() <= 0:
        raise ValueError('sample_ct_phantom_params: shape_probs must be 3 non-negative '
                         f'probabilities, got {shape_probs}.')
    rng = _as_rng(seed)
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    centre = -(np.asarray(shape) - 1) / 2 * np.asarray(spacing)
    origin = [float(c + rng.uniform(-origin_jitter, origin_jitter)) for c in centre]
    p = dict(shape=list(shape), spacing=list(spacing), origin=origin)
    p['body'] = dict(a=u(0.84, 0.92), b=u(0.62, 0.70), cv=u(-0.04, 0.0), fat=u(0.06, 0.10))
    p['diaphragm'] = dict(w=u(0.10, 0.18), dome=u(0.10, 0.16))
    lungs = []
    for side in (-1, 1):  # patient's left (heart side), right
        lungs.append(dict(side=side, cu=side * u(0.36, 0.40), cv=u(0.0, 0.06), a=u(0.25, 0.28),
                          b=u(0.46, 0.52), wc=u(0.55, 0.62), apex=u(0.97, 1.05),
                          hu=u(-875, -845)))
    p['lungs'] = lungs
    p['heart'] = dict(cu=u(-0.14, -0.08), cv=u(0.16, 0.24), cw=u(0.26, 0.34), a=u(0.26, 0.30),
                      b=u(0.22, 0.26), c=u(0.18, 0.24), hu=u(35, 45))
    p['spine'] = dict(cv=p['body']['cv'] - p['body']['b'] + u(0.26, 0.30), r=u(0.10, 0.12),
                      period_mm=u(22, 28), phase=u(0, 1))
    p['ribs'] = dict(period_mm=u(18, 24), slope_mm=u(8, 16), phase=u(0, 1))
    p['noise_std'] = u(*noise_std)
    p['noise_seed'] = int(rng.integers(0, 2**31 - 1))
    p['vessels'] = _sample_vessels(p, rng)
    count = int(rng.integers(num_nodules[0], num_nodules[1] + 1))
    p['nodules'] = _place_nodules(p, rng, count, nodule_diameter, probs / probs.sum())
    return p


def _mm_per_unit(p: dict) -> np.ndarray:
    """mm per normalised unit along (u, v, w)."""
    shape, spacing = np.asarray(p['shape'], float), np.asarray(p['spacing'], float)
    return np.array([shape[0] * spacing[0] / 2, shape[1] * spacing[1] / 2,
                     shape[2] * spacing[2]])


def _to_norm(p: dict, ijk: np.ndarray) -> np.ndarray:
    shape = np.asarray(p['shape'], float)
    n = (np.asarray(ijk, float) + 0.5) / shape
    return np.stack([n[..., 0] * 2 - 1, n[..., 1] * 2 - 1, n[..., 2]], axis=-1)


def _to_voxel(p: dict, uvw: np.ndarray) -> np.ndarray:
    shape = np.asarray(p['shape'], float)
    uvw = np.asarray(uvw, float)
    n = np.stack([(uvw[..., 0] + 1) / 2, (uvw[..., 1] + 1) / 2, uvw[..., 2]], axis=-1)
    return n * shape - 0.5


def _lung_level(p: dict, lung: dict, u, v, w):
    """< 1 inside the lung (before the heart indent), for broadcastable u, v, w."""
    dw = np.clip((w - lung['wc']) / (lung['apex'] - lung['wc']), 0, None)
    taper = np.sqrt(np.clip(1 - dw * dw, 1e-4, None))  # narrowing to the apex
    du = (u - lung['cu']) / lung['a']
    dv = (v - lung['cv']) / lung['b']
    level = (du * du + dv * dv) / (taper * taper)
    d = p['diaphragm']
    floor = d['w'] + d['dome'] * (du * du + dv * dv)  # dome: highest at the lung centre
    return np.where((w > floor) & (w < lung['apex']), level, 2.0)


def _heart_level(p: dict, u, v, w):
    h = p['heart']
    return ((u - h['cu']) / h['a'])**2 + ((v - h['cv']) / h['b'])**2 + \
        ((w - h['cw']) / h['c'])**2


def _in_lungs(p: dict, uvw: np.ndarray) -> np.ndarray:
    """Bool: the points ``(..., 3)`` lie in a lung's air (lungs minus heart)."""
    u, v, w = uvw[..., 0], uvw[..., 1], uvw[..., 2]
    inside = np.zeros(u.shape, dtype=bool)
    for lung in p['lungs']:
        inside |= _lung_level(p, lung, u, v, w) < 1
    return inside & (_heart_level(p, u, v, w) > 1.1)


def _sample_vessels(p: dict, rng: np.random.Generator) -> List[dict]:
    """Three branching trees per lung, from the hilum; segments in normalised coordinates."""
    mm = _mm_per_unit(p)
    segments = []
    for lung in p['lungs']:
        hilum = np.array([lung['cu'] - lung['side'] * 0.6 * lung['a'], lung['cv'] + 0.05,
                          lung['wc'] - 0.05])
        for up in (0.3, 0.0, -0.25):
            target = np.array([lung['cu'] + lung['side'] * 0.5 * lung['a'],
                               lung['cv'] + rng.uniform(-0.3, 0.3),
                               lung['wc'] + up])
            d = (target - hilum) * mm
            stack = [(hilum, d / np.linalg.norm(d), 0.45 * np.linalg.norm(d), 2.5, 0)]
            while stack:
                start, direction, length, radius, depth = stack.pop()
                end = start + direction * length / mm
                segments.append(dict(a=start.tolist(), b=end.tolist(), r0=float(radius),
                                     r1=float(radius * 0.8)))
                if depth == 5:
                    continue
                for sign in (-1, 1):
                    axis = rng.standard_normal(3)
                    axis -= axis.dot(direction) * direction
                    axis /= np.linalg.norm(axis) + 1e-12
                    angle = sign * rng.uniform(0.35, 0.7)
                    child = np.cos(angle) * direction + np.sin(angle) * axis
                    stack.append((end, child / np.linalg.norm(child),
                                  length * rng.uniform(0.65, 0.85), radius * 0.72, depth + 1))
    return segments


def _place_nodules(p: dict, rng: np.random.Generator, count: int,
                   diameter: Tuple[float, float], probs: np.ndarray) -> List[dict]:
    """Rejection-sample nodules whose whole extent (spicules included) lies in lung air."""
    spacing = np.asarray(p['spacing'], float)
    shape = np.asarray(p['shape'])
    directions = rng.standard_normal((64, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    nodules: List[dict] = []
    batch = 24  # candidates tested at once (vectorised rejection sampling)
    for _ in range(count):
        d_mm = float(rng.uniform(*diameter))
        kind = NODULE_SHAPES[int(rng.choice(3, p=probs))]
        for _round in range(6):  # shrink the diameter by 0.85 after each failed round
            if d_mm / 2 < spacing.min():
                break
            axes = np.exp(rng.uniform(-0.2, 0.2, (batch, 3)))
            axes /= np.prod(axes, axis=1, keepdims=True)**(1 / 3)  # core volume = d_mm sphere
            extent = d_mm / 2 * axes.max(1) * (1.8 if kind == 'spiculated' else 1.3)
            side = rng.integers(0, 2, batch)
            lung = {k: np.array([p['lungs'][i][k] for i in side]) for k in ('cu', 'cv', 'a', 'b',
                                                                          'apex')}
            t, rho = rng.uniform(0, 2 * np.pi, batch), np.sqrt(rng.uniform(0, 0.8, batch))
            uvw = np.stack([lung['cu'] + lung['a'] * rho * np.cos(t),
                            lung['cv'] + lung['b'] * rho * np.sin(t),
                            rng.uniform(p['diaphragm']['w'] + 0.1, lung['apex'] - 0.1)], -1)
            centre = np.rint(_to_voxel(p, uvw)).astype(int)
            reach = extent[:, None] / spacing + 1  # one voxel of margin
            ok = np.all(centre - reach >= 0, 1) & np.all(centre + reach <= shape - 1, 1)
            pts = centre[:, None] + directions[None] * reach[:, None]
            pts = np.concatenate([centre[:, None], pts], 1)
            ok &= _in_lungs(p, _to_norm(p, pts)).all(1)
            for n in nodules:
                gap = np.linalg.norm((centre - np.asarray(n['center'])) * spacing, axis=1)
                ok &= gap >= extent + n['extent_mm'] + 2
            if ok.any():
                k = int(np.argmax(ok))
                nodules.append(_nodule(rng, centre[k], d_mm, axes[k], kind, float(extent[k])))
                break
            d_mm *= 0.85
    return nodules


def _nodule(rng: np.random.Generator, centre: np.ndarray, d_mm: float, axes: np.ndarray,
            kind: str, extent: float) -> dict:
    q = rng.standard_normal(4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    rotation = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                         [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                         [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
    n = dict(center=[int(c) for c in centre], diameter_mm=round(d_mm, 3),
             axes=axes.tolist(), rotation=rotation.tolist(), shape=kind,
             hu=float(rng.uniform(-100, 60)), extent_mm=float(extent), spikes=[], lobes=[])
    if kind == 'spiculated':
        dirs = rng.standard_normal((int(rng.integers(4, 8)), 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        n['spikes'] = [dict(dir=dv.tolist(), length=float(rng.uniform(0.5, 0.8)))
                       for dv in dirs]
    elif kind == 'lobulated':
        dirs = rng.standard_normal((3, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        n['lobes'] = [dict(dir=dv.tolist(), amp=float(rng.uniform(0.12, 0.25))) for dv in dirs]
    n['malignant'] = nodule_is_malignant(d_mm, kind)
    return n


# ---------------------------------------------------------------------------- render


def _soft(level: np.ndarray, edge: float) -> np.ndarray:
    """1 inside (level < 1), 0 outside, a linear ramp of width ``edge`` (partial volume)."""
    return np.clip((1.0 - level) / edge + 0.5, 0.0, 1.0).astype(np.float32)


def _vessel_coverage(p: dict, shape: Tuple[int, int, int]) -> np.ndarray:
    """Partial-volume coverage (0..1) of all vessel segments: tapered tubes, each computed in
    its bounding box and max-accumulated."""
    out = np.zeros(shape, dtype=np.float32)
    segs = p['vessels']
    if not segs:
        return out
    spacing = np.asarray(p['spacing'], float)
    a_vox = _to_voxel(p, np.array([sg['a'] for sg in segs]))
    b_vox = _to_voxel(p, np.array([sg['b'] for sg in segs]))
    r0 = np.array([sg['r0'] for sg in segs])
    r1 = np.array([sg['r1'] for sg in segs])
    reach = np.maximum(r0, r1)[:, None] / spacing + 1.5
    lo_all = np.maximum(np.floor(np.minimum(a_vox, b_vox) - reach).astype(int), 0)
    hi_all = np.minimum(np.ceil(np.maximum(a_vox, b_vox) + reach).astype(int) + 1, shape)
    axes_mm = [np.arange(n, dtype=np.float32) * np.float32(sp) for n, sp in zip(shape, spacing)]
    for i in range(len(segs)):
        lo, hi = lo_all[i], hi_all[i]
        if np.any(hi <= lo):
            continue
        a_mm, ab = a_vox[i] * spacing, (b_vox[i] - a_vox[i]) * spacing
        inv = np.float32(1.0 / (float(ab @ ab) or 1.0))
        dx = (axes_mm[0][lo[0]:hi[0]] - np.float32(a_mm[0]))[:, None, None]
        dy = (axes_mm[1][lo[1]:hi[1]] - np.float32(a_mm[1]))[None, :, None]
        dz = (axes_mm[2][lo[2]:hi[2]] - np.float32(a_mm[2]))[None, None, :]
        ab32 = ab.astype(np.float32)
        t = np.clip((dx * ab32[0] + dy * ab32[1] + dz * ab32[2]) * inv, 0, 1)
        dist = np.sqrt((dx - t * ab32[0])**2 + (dy - t * ab32[1])**2 + (dz - t * ab32[2])**2)
        radius = np.float32(r0[i]) + np.float32(r1[i] - r0[i]) * t
        cov = np.clip(radius - dist + 0.5, 0, 1)
        if max(r0[i], r1[i]) < 0.5:  # sub-voxel vessels keep a faint partial-volume trace
            cov *= radius / 0.5
        box = out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        np.maximum(box, cov, out=box)
    return out


def _nodule_mask(p: dict, n: dict) -> Tuple[Tuple[slice, ...], np.ndarray]:
    """The nodule's bool mask in its bounding box (point-symmetric about the centre voxel)."""
    spacing = np.asarray(p['spacing'], float)
    centre = np.asarray(n['center'])
    reach = np.ceil(n['extent_mm'] / spacing).astype(int) + 1
    lo = np.maximum(centre - reach, 0)
    hi = np.minimum(centre + reach + 1, p['shape'])
    offs = np.stack(np.meshgrid(*[(np.arange(lo[i], hi[i]) - centre[i]) * spacing[i]
                                  for i in range(3)], indexing='ij'), axis=-1)
    local = offs @ np.asarray(n['rotation'])  # into the nodule's frame
    r0 = n['diameter_mm'] / 2
    scaled = local / (r0 * np.asarray(n['axes']))
    radius = np.sqrt((scaled**2).sum(-1))
    direction = scaled / np.maximum(radius[..., None], 1e-6)
    bound = np.ones_like(radius)
    for lobe in n['lobes']:  # even in the direction: point-symmetric
        bound += lobe['amp'] * (2 * (direction @ np.asarray(lobe['dir']))**2 - 1)
    for spike in n['spikes']:  # |cos|: a spike and its opposite
        c = np.abs(direction @ np.asarray(spike['dir']))
        bound += spike['length'] * np.clip((c - 0.94) / 0.06, 0, 1)**2
    box = tuple(slice(lo[i], hi[i]) for i in range(3))
    return box, radius <= bound


def render_ct_phantom(params: dict) -> CTPhantom:
    """Draw a phantom from :func:`sample_ct_phantom_params`.

    Returns:
        CTPhantom: ``volume`` (float32 HU, whole numbers), ``mask`` (uint8, 1 = nodule),
        ``nodules`` (records: ``center_voxel``, ``center_mm`` (RAS world), ``diameter_mm``,
        ``shape``, ``hu``, ``malignant``, ``num_voxels``), ``affine`` (RAS) and ``tissue``.
    """
    p = params
    shape = tuple(p['shape'])
    X, Y, Z = shape
    rng = np.random.default_rng(p['noise_seed'])
    u = ((np.arange(X, dtype=np.float32) + 0.5) / X * 2 - 1)[:, None, None]
    v = ((np.arange(Y, dtype=np.float32) + 0.5) / Y * 2 - 1)[None, :, None]
    w = ((np.arange(Z, dtype=np.float32) + 0.5) / Z)[None, None, :]
    z_mm = (np.arange(Z, dtype=np.float32) * p['spacing'][2])[None, None, :]
    hu = np.full(shape, -1000.0, dtype=np.float32)
    tissue = np.zeros(shape, dtype=np.uint8)

    def paint(where, value, code):
        where = np.broadcast_to(where, shape)
        hu[where] = np.broadcast_to(value, shape)[where] if np.ndim(value) else value
        tissue[where] = code

    body = p['body']
    ring = np.sqrt((u / body['a'])**2 + ((v - body['cv']) / body['b'])**2)
    paint(ring < 1, -100.0, _FAT)
    inner = ring < 1 - body['fat']
    paint(inner, 40.0, _SOFT)
    # abdomen under the diaphragm: liver on the patient's right (u > 0)
    d = p['diaphragm']
    floor = d['w'] + d['dome'] * 0.5 * (1 - np.clip(np.abs(u) - 0.1, 0, 1))
    paint(inner & (w < floor) & (u > -0.15), 60.0, _SOFT)
    # mediastinum (fat) with heart, aorta, trachea
    spine = p['spine']
    lung_tops = max(lg['apex'] for lg in p['lungs'])
    med = inner & (np.abs(u) < 0.28) & (v > spine['cv'] + spine['r']) & (w >= floor) & \
        (w < lung_tops)
    paint(med, -80.0, _FAT)
    heart = _heart_level(p, u, v, w) < 1
    paint(heart & inner, p['heart']['hu'], _SOFT)
    aorta_v = spine['cv'] + spine['r'] + 0.10
    aorta = ((u + 0.12)**2 + (v - aorta_v)**2 < 0.07**2) & (w > floor) & (w < 0.85)
    paint(aorta & inner, 45.0, _SOFT)
    trachea_r = ((u / 0.07)**2 + ((v - 0.08) / 0.07)**2)
    paint((trachea_r < 1) & (w > 0.62) & inner, 30.0, _SOFT)
    paint((trachea_r < 0.6) & (w > 0.62) & inner, -1000.0, _AIR)
    # lungs: denser posteriorly, smooth texture
    texture = ndimage.zoom(rng.standard_normal((8, 8, 6)).astype(np.float32),
                           (X / 8, Y / 8, Z / 6), order=1)[:X, :Y, :Z]
    lungs = np.zeros(shape, dtype=bool)
    for lung in p['lungs']:
        region = (_lung_level(p, lung, u, v, w) < 1) & ~heart
        value = lung['hu'] - 25.0 * v + 12.0 * texture
        paint(region, value, _LUNG)
        lungs |= region
    # spine: vertebral bodies (cortical rim, cancellous core, discs), canal, spinous process
    sv, sr = spine['cv'], spine['r']
    vert = np.sqrt((u / sr)**2 + ((v - sv) / (sr * 0.85))**2)
    phase = (z_mm / spine['period_mm'] + spine['phase']) % 1.0
    disc = phase < 0.18
    paint((vert < 1) & ~disc, 950.0, _BONE)
    paint((vert < 0.8) & ~disc, 450.0, _BONE)
    paint((vert < 1) & disc, 80.0, _SOFT)
    canal_v = sv - sr * 0.85 - 0.06
    paint((u / 0.055)**2 + ((v - canal_v) / 0.05)**2 < 1, 15.0, _SOFT)
    arch = ((u / 0.09)**2 + ((v - canal_v) / 0.09)**2 < 1) & \
        ((u / 0.055)**2 + ((v - canal_v) / 0.05)**2 >= 1)
    process = (np.abs(u) < 0.03) & (v < canal_v) & (v > canal_v - 0.16)
    paint((arch | process) & inner & ~disc, 700.0, _BONE)
    # ribs: bands around the body wall, slanting down towards the front
    ribs = p['ribs']
    angle = np.arctan2(v - body['cv'], u)
    rib_phase = (z_mm + ribs['slope_mm'] * np.sin(angle)) / ribs['period_mm'] + ribs['phase']
    band = np.cos(2 * np.pi * rib_phase) > 0.55
    wall = (ring > 1 - body['fat'] - 0.09) & (ring < 1 - body['fat'] - 0.02)
    paint(wall & band & (w > floor) & (w < lung_tops) & (v < 0.55 * body['b']), 700.0, _BONE)
    # vessels in the lungs (partial volume)
    cov = _vessel_coverage(p, shape)
    cov *= lungs
    hu += cov * (40.0 - hu)
    tissue[cov >= 0.5] = _VESSEL
    # nodules
    mask = np.zeros(shape, dtype=np.uint8)
    affine = ct_phantom_affine(shape, p['spacing'], p['origin'])
    records = []
    for n in p['nodules']:
        box, inside = _nodule_mask(p, n)
        hu[box][inside] = n['hu']
        tissue[box][inside] = _NODULE
        mask[box][inside] = 1
        records.append(dict(center_voxel=tuple(n['center']),
                            center_mm=tuple(float(c) for c in voxel_to_world(affine,
                                                                             n['center'])),
                            diameter_mm=n['diameter_mm'], shape=n['shape'], hu=n['hu'],
                            malignant=n['malignant'], num_voxels=int(inside.sum())))
    # correlated noise, std noise_std
    noise = rng.standard_normal(shape, dtype=np.float32)
    noise = ndimage.gaussian_filter(noise, 0.7, mode='wrap')
    noise *= p['noise_std'] / max(float(noise.std()), 1e-6)
    hu += noise
    np.rint(hu, out=hu)
    np.clip(hu, -1024, 3071, out=hu)
    return CTPhantom(hu, mask, records, affine, tissue)


def generate_ct_phantom(seed: SeedLike, shape: Sequence[int] = (96, 96, 48),
                        spacing: Sequence[float] = (1.0, 1.0, 2.5), **kwargs) -> CTPhantom:
    """Sample and render one phantom (see :func:`sample_ct_phantom_params` for ``kwargs``).

    The same ``seed`` and arguments give the same bytes.
    """
    return render_ct_phantom(sample_ct_phantom_params(seed, shape, spacing, **kwargs))
