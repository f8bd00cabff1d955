"""Procedural chest phantoms: labelled, deterministic, frontal-chest-radiograph-like images.

They serve as the embedded demo data (no download) and as a cheap probe task for tests: the
labels (``nodule``, ``cardiomegaly``, ``effusion``) are drawn independently, each with
probability 0.4 by default, and are truly visible in the image.

A phantom is a sum of projected densities in a frame normalised to the image size (``u``
across, ``v`` down, both in ``[0, 1]``; image left is the patient's right, as in a PA view):

- a soft-tissue trunk with a neck, denser abdomen under the diaphragm;
- two lungs (air: dark) cut by two diaphragm domes, with smooth vessel-like texture;
- mediastinum, aortic knob and heart (dense: bright); the heart's width over the thoracic width
  (outer lung edges) is the cardio-thoracic ratio, drawn in ``[0.36, 0.46]`` or, with
  ``cardiomegaly``, in ``[0.54, 0.64]`` (the label means ratio > 0.5, with a margin);
- spine with vertebrae, curved ribs over the lungs, clavicles;
- ``nodule``: 1 to 3 projected spheres (``sqrt(1 - (d / r)^2)`` profile) inside the aerated
  lung only;
- ``effusion``: fluid filling the base of one or both lungs, with a meniscus that rises
  laterally (blunted costophrenic angle);
- smooth noise, film grain, a slight blur and a per-image exposure.

:func:`sample_chest_phantom_params` draws the anatomy (plain floats and lists: picklable, JSON
serialisable); :func:`render_chest_phantom` draws the image from them, so a test can render the
same phantom with and without a finding. Everything is numpy/cv2 and vectorised (a few ms at
256 x 256). Hand-written: no library makes labelled chest phantoms.
"""
import hashlib
import json
import os
import os.path as osp
import shutil
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from dira_mm.registry import DATASETS
from .base_dataset import MedicalImageDataset

__all__ = [
    'PHANTOM_CLASSES', 'NODULE_RADIUS', 'NODULE_AMPLITUDE', 'sample_chest_phantom_params',
    'render_chest_phantom', 'chest_phantom_masks', 'generate_chest_phantom', 'ChestPhantomDataset', 'make_demo_dataset'
]

#: Label names, in the order of ``gt_label``.
PHANTOM_CLASSES = ('Nodule', 'Cardiomegaly', 'Effusion')
_LABEL_KEYS = ('nodule', 'cardiomegaly', 'effusion')

SeedLike = Union[int, Sequence[int], np.random.Generator]


def _as_rng(seed: SeedLike) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------- anatomy


#: Default nodule radius range (fraction of the image side) and peak density range.
NODULE_RADIUS = (0.02, 0.035)
NODULE_AMPLITUDE = (0.2, 0.3)


def sample_chest_phantom_params(seed: SeedLike,
                                p_nodule: float = 0.4,
                                p_cardiomegaly: float = 0.4,
                                p_effusion: float = 0.4,
                                nodule_radius: Tuple[float, float] = NODULE_RADIUS,
                                nodule_amplitude: Tuple[float, float] = NODULE_AMPLITUDE) -> dict:
    """Draw the anatomy and findings of one phantom.

    Args:
        seed (int | Sequence[int] | np.random.Generator): Seed (or generator) of the draws.
        p_nodule (float): Probability of nodules. Defaults to 0.4.
        p_cardiomegaly (float): Probability of a cardio-thoracic ratio above 0.5.
            Defaults to 0.4.
        p_effusion (float): Probability of a pleural effusion. Defaults to 0.4.
        nodule_radius (tuple[float, float]): Range of the nodule radius, as a fraction of
            the image side. Defaults to (0.02, 0.035).
        nodule_amplitude (tuple[float, float]): Range of the nodule's peak density (the
            lungs' air is ~0.2 darker than soft tissue). Defaults to (0.2, 0.3); smaller,
            fainter nodules (e.g. (0.01, 0.02) and (0.06, 0.12)) make a harder task.

    Returns:
        dict: Parameters in normalised coordinates, with ``labels`` (``nodule``,
        ``cardiomegaly``, ``effusion``: 0 or 1) and ``ctr`` (the cardio-thoracic ratio).
    """
    rng = _as_rng(seed)
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    has_nodule = bool(rng.random() < p_nodule)
    has_cardiomegaly = bool(rng.random() < p_cardiomegaly)
    has_effusion = bool(rng.random() < p_effusion)

    cx, sy = 0.5 + u(-0.02, 0.02), u(-0.02, 0.02)
    p = dict(cx=cx, body=dict(cy=0.62 + sy, a=u(0.40, 0.46), b=u(0.52, 0.58)),
             neck_half_width=u(0.075, 0.095))
    lungs = []
    for side in (-1, 1):  # image left (patient's right), image right
        lx, la = u(0.165, 0.195), u(0.12, 0.14)
        dome = 0.67 + sy + u(-0.02, 0.02) + (-0.02 if side < 0 else 0.0)
        lungs.append(dict(side=side, cx=cx + side * lx, cy=0.44 + sy + u(-0.01, 0.01),
                          a=la, b=u(0.30, 0.33), dome=dome, dome_depth=u(0.06, 0.09)))
    p['lungs'] = lungs
    left, right = lungs
    thoracic_width = (right['cx'] + right['a']) - (left['cx'] - left['a'])
    ctr = u(0.54, 0.64) if has_cardiomegaly else u(0.36, 0.46)
    half_extent = ctr * thoracic_width / 2
    angle = u(-0.35, -0.15)  # long axis tilted towards the apex (image right, down)
    hb = u(0.11, 0.13) + 0.12 * (ctr - 0.4)
    ha = float(np.sqrt(max(half_extent**2 - (hb * np.sin(angle))**2, 1e-6)) / np.cos(angle))
    heart_cy = 0.5 * (left['dome'] + right['dome']) - 0.45 * hb
    p['heart'] = dict(cx=cx + half_extent / 3, cy=heart_cy, a=ha, b=hb, angle=angle,
                      half_extent=half_extent)
    p['ctr'] = ctr
    p['mediastinum_half_width'] = u(0.055, 0.07)
    p['rib_spacing'] = u(0.058, 0.066)
    p['rib_phase'] = u(0.0, 1.0)
    p['rib_curvature'] = u(0.10, 0.14)
    p['clavicle_y'] = 0.19 + sy + u(-0.015, 0.015)
    p['exposure'] = dict(gain=u(0.92, 1.08), offset=u(-0.03, 0.03), gamma=u(0.8, 1.0))
    p['noise_seed'] = int(rng.integers(0, 2**31 - 1))

    effusion = []
    if has_effusion:
        sides = [(-1, ), (1, ), (-1, 1)][int(rng.choice(3, p=(0.4, 0.4, 0.2)))]
        for side in sides:
            effusion.append(dict(side=side, height=u(0.11, 0.18), meniscus=u(0.04, 0.07)))
    p['effusion'] = effusion
    p['nodules'] = []
    if has_nodule:
        p['nodules'] = _place_nodules(p, rng, int(rng.integers(1, 4)), nodule_radius,
                                      nodule_amplitude)
        has_nodule = bool(p['nodules'])
    p['labels'] = dict(nodule=int(has_nodule), cardiomegaly=int(has_cardiomegaly),
                       effusion=int(bool(effusion)))
    return p


def _place_nodules(p: dict, rng: np.random.Generator, count: int,
                   radius: Tuple[float, float] = NODULE_RADIUS,
                   amplitude: Tuple[float, float] = NODULE_AMPLITUDE) -> List[dict]:
    """Rejection-sample nodule centres well inside the aerated lung."""
    nodules = []
    for _ in range(200):
        if len(nodules) == count:
            break
        lung = p['lungs'][int(rng.integers(0, 2))]
        r = float(rng.uniform(*radius))
        t, rho = rng.uniform(0, 2 * np.pi), np.sqrt(rng.uniform(0, 0.75))
        nu = lung['cx'] + lung['a'] * rho * np.cos(t)
        nv = lung['cy'] + lung['b'] * rho * np.sin(t)
        ring = np.linspace(0, 2 * np.pi, 8, endpoint=False)
        us = np.concatenate([[nu], nu + 1.3 * r * np.cos(ring)])
        vs = np.concatenate([[nv], nv + 1.3 * r * np.sin(ring)])
        air = _masks(p, us[None], vs[None], edge_scale=0.0)['air']
        if air.min() < 0.999:
            continue
        if any(np.hypot(nu - n['u'], nv - n['v']) < 2.5 * max(r, n['r']) for n in nodules):
            continue
        nodules.append(dict(u=float(nu), v=float(nv), r=r,
                            amplitude=float(rng.uniform(*amplitude))))
    return nodules


# ---------------------------------------------------------------------------- masks


def _soft(level: np.ndarray, edge: float) -> np.ndarray:
    """1 inside (level < 1), 0 outside, a linear ramp of width ``edge`` at the boundary."""
    if edge <= 0:
        return (level < 1).astype(np.float32)
    inv = 1.0 / edge
    out = level * -inv
    out += inv + 0.5
    np.maximum(out, 0.0, out=out)
    return np.minimum(out, 1.0, out=out)


def _masks(p: dict, uu: np.ndarray, vv: np.ndarray, edge_scale: float = 1.0) -> dict:
    """Soft masks (float32 in [0, 1]) of the anatomy at the points ``(uu, vv)``.

    ``uu`` and ``vv`` broadcast against each other (a row and a column for an image): terms
    of one coordinate only are computed on the row or the column, which keeps it cheap.
    """
    e = 0.02 * edge_scale
    cx, body_p = p['cx'], p['body']
    bx = ((uu - cx) * (1.0 / body_p['a']))**2
    by = ((vv - body_p['cy']) * (1.0 / body_p['b']))**2
    body = _soft(bx * bx + by * by, 2 * e)
    neck = _soft(np.abs(uu - cx) * (1.0 / p['neck_half_width']), 4 * e) * (vv < body_p['cy'])
    body = np.maximum(body, neck)

    lungs = fluid = below = None
    effusion = {item['side']: item for item in p['effusion']}
    for lung in p['lungs']:
        dx = (uu - lung['cx']) * (1.0 / lung['a'])
        dy = (vv - lung['cy']) * (1.0 / lung['b'])
        dome = lung['dome'] + lung['dome_depth'] * np.clip(lung['side'] * dx + 0.2, 0, None)**2
        under = (vv - dome) * 100.0  # > 0 below the diaphragm, 1 = 0.01 below
        inside = _soft(dx * dx + dy * dy, 2 * e) * _soft(under + 1.0, edge_scale)
        side_below = np.clip(under, 0, 1) * _soft(np.abs(dx) * (1 / 1.4), 0.4)
        if lung['side'] in effusion:
            item = effusion[lung['side']]
            lateral = np.clip(lung['side'] * dx, 0, 1)
            level = dome - item['height'] - item['meniscus'] * lateral * lateral
            if edge_scale:
                here = np.clip((vv - level) * (1 / 0.012) + 0.5, 0, 1) * inside
            else:
                here = (vv > level) * inside
        else:
            here = None
        lungs = inside if lungs is None else np.maximum(lungs, inside)
        below = side_below if below is None else np.maximum(below, side_below)
        if here is not None:
            fluid = here if fluid is None else np.maximum(fluid, here)
    if fluid is None:
        fluid = np.zeros_like(lungs)
    h = p['heart']
    cos, sin = float(np.cos(h['angle'])), float(np.sin(h['angle']))
    du, dv = uu - h['cx'], vv - h['cy']
    along = (du * (cos / h['a']) + dv * (sin / h['a']))
    across = (du * (-sin / h['b']) + dv * (cos / h['b']))
    heart = _soft(along * along + across * across, 1.5 * e)
    air = lungs * (1.0 - heart) * (1.0 - fluid)
    return dict(body=body, lungs=lungs, heart=heart, fluid=fluid, air=air, below=below * body)


def chest_phantom_masks(params: dict, size: int = 256) -> Dict[str, np.ndarray]:
    """Binary masks ``(size, size)`` of the phantom's parts, for tests and probes.

    Returns:
        dict: ``body``, ``lungs`` (before the heart and fluid), ``heart``, ``fluid``
        (effusion), ``air`` (the aerated lung: lungs minus heart and fluid), as bool arrays.
    """
    uu, vv = _grid(size)
    shape = (size, size)
    return {
        k: np.broadcast_to(v > 0.5, shape).copy()
        for k, v in _masks(params, uu, vv).items() if k != 'below'
    }


def _grid(size: int) -> Tuple[np.ndarray, np.ndarray]:
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    return coords[None, :], coords[:, None]


# ---------------------------------------------------------------------------- render


def _segment_distance(uu, vv, a: Tuple[float, float], b: Tuple[float, float]) -> np.ndarray:
    au, av = b[0] - a[0], b[1] - a[1]
    norm = 1.0 / (au * au + av * av)
    du, dv = uu - a[0], vv - a[1]
    t = np.clip(du * (au * norm) + dv * (av * norm), 0, 1)
    ru, rv = du - t * au, dv - t * av
    return np.sqrt(ru * ru + rv * rv)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    low = rng.standard_normal((cells, cells), dtype=np.float32)
    return cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)


def render_chest_phantom(params: dict, size: int = 256) -> np.ndarray:
    """Draw a phantom from :func:`sample_chest_phantom_params` as uint8 ``(size, size)``.

    The noise comes from ``params['noise_seed']``, so removing a finding from ``params``
    changes the image only where the finding was.
    """
    p = params
    uu, vv = _grid(size)
    m = _masks(p, uu, vv)
    body, heart, air, fluid = m['body'], m['heart'], m['air'], m['fluid']
    rng = np.random.default_rng(p['noise_seed'])
    vessels = _smooth_noise(rng, size, 22)
    vessels = np.exp(vessels * vessels * -5.0)  # thin ridges along the noise's zero lines
    low = _smooth_noise(rng, size, 5)
    grain = rng.standard_normal((size, size), dtype=np.float32)

    cx = p['cx']
    outer = [abs(lung['cx'] - cx) + lung['a'] for lung in p['lungs']]
    lateral = np.abs(uu - cx) / np.where(uu < cx, outer[0], outer[1]).astype(np.float32)
    d = 0.03 + 0.40 * body + 0.08 * m['below'] + 0.06 * fluid + 0.12 * heart
    # mediastinum, aortic knob, trachea (air: dark)
    med = _soft(np.abs(uu - cx) * (1.0 / p['mediastinum_half_width']), 0.3) * \
        ((vv > 0.12) & (vv < p['heart']['cy']))
    ku, kv = uu - (cx + 0.045), vv - (p['heart']['cy'] - 0.2)
    knob = _soft((ku * ku + kv * kv) * (1.0 / 0.035**2), 0.5)
    trachea = _soft(np.abs(uu - cx) * (1.0 / 0.016), 0.5) * (vv < 0.3)
    d = d + (0.18 * np.maximum(med, knob) - 0.10 * trachea) * body
    # aerated lung: darker laterally, vessels denser towards the hila
    d = d - air * (0.34 - 0.08 * (1.0 - lateral) - 0.07 * (1.0 - lateral) * vessels)
    # spine with vertebrae
    spine = _soft(np.abs(uu - cx) * (1.0 / 0.032), 0.4)
    vertebrae = 0.75 + 0.25 * np.cos(vv * (2 * np.pi / 0.048))
    d = d + 0.09 * (spine * vertebrae) * body
    # ribs: periodic bands curving down laterally, over the thoracic cage
    phase = (vv - p['rib_curvature'] * lateral * lateral) * (2 * np.pi / p['rib_spacing'])
    band = np.clip((np.cos(phase + 2 * np.pi * p['rib_phase']) - 0.45) * (1 / 0.55), 0, 1)
    cage = None
    for lung in p['lungs']:
        cu = ((uu - lung['cx']) * (1.0 / (lung['a'] + 0.025)))**2
        cv = ((vv - lung['cy'] + 0.02) * (1.0 / (lung['b'] + 0.03)))**2
        side = ((uu - cx) * lung['side'] > 0.02) * _soft(cu + cv, 0.1)
        side = side * (vv < lung['dome'] + 0.06)
        cage = side if cage is None else np.maximum(cage, side)
    d = d + 0.09 * band * cage
    # clavicles
    for sign in (-1, 1):
        a = (cx + sign * 0.035, p['clavicle_y'])
        b = (cx + sign * 0.30, p['clavicle_y'] - 0.05)
        d = d + 0.14 * _soft(_segment_distance(uu, vv, a, b) * (1.0 / 0.012), 0.4) * body
    # nodules: projected spheres, in the aerated lung only (computed in their bounding box)
    d = np.ascontiguousarray(d, dtype=np.float32)
    for n in p['nodules']:
        r = n['r']
        rows = slice(max(int((n['v'] - r) * size) - 1, 0), int((n['v'] + r) * size) + 2)
        cols = slice(max(int((n['u'] - r) * size) - 1, 0), int((n['u'] + r) * size) + 2)
        nu, nv = uu[:, cols] - n['u'], vv[rows] - n['v']
        dist2 = (nu * nu + nv * nv) * (1.0 / (r * r))
        d[rows, cols] += n['amplitude'] * np.sqrt(np.clip(1.0 - dist2, 0, 1)) * air[rows, cols]
    # noise, exposure, blur
    d += 0.02 * low * body + 0.008 * grain
    exp = p['exposure']
    d = np.clip(d * exp['gain'] + exp['offset'], 0, 1)**exp['gamma']
    img = cv2.GaussianBlur(d * 255.0, (0, 0), 0.6 * size / 256)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def generate_chest_phantom(seed: SeedLike,
                           size: int = 256,
                           p_nodule: float = 0.4,
                           p_cardiomegaly: float = 0.4,
                           p_effusion: float = 0.4,
                           **nodule_kwargs) -> Tuple[np.ndarray, Dict[str, int]]:
    """Draw a chest phantom; the same seed gives the same image and labels.

    Args:
        seed (int | Sequence[int] | np.random.Generator): Seed or generator.
        size (int): Image side in pixels. Defaults to 256.
        p_nodule, p_cardiomegaly, p_effusion (float): Finding probabilities (0.4 each).
        **nodule_kwargs: ``nodule_radius`` / ``nodule_amplitude`` ranges of
            :func:`sample_chest_phantom_params`.

    Returns:
        tuple[np.ndarray, dict]: The uint8 ``(size, size)`` image and the labels
        ``dict(nodule=0|1, cardiomegaly=0|1, effusion=0|1)``.
    """
    params = sample_chest_phantom_params(seed, p_nodule, p_cardiomegaly, p_effusion,
                                         **nodule_kwargs)
    return render_chest_phantom(params, size), dict(params['labels'])


def phantom_gt_label(params: dict) -> np.ndarray:
    """``gt_label`` of a phantom: float32 ``[nodule, cardiomegaly, effusion]``."""
    return np.array([params['labels'][k] for k in _LABEL_KEYS], dtype=np.float32)


# ---------------------------------------------------------------------------- dataset


@DATASETS.register_module()
class ChestPhantomDataset(MedicalImageDataset):
    """Chest phantoms generated in memory, with ``gt_label`` (nodule, cardiomegaly, effusion).

    Sample ``i`` is drawn from ``np.random.default_rng([content_seed, i])``: the content is
    fixed (like files on disk), while the augmentation seed ``seed`` of
    :class:`MedicalImageDataset` changes per epoch. ``results['img']`` is set before the
    pipeline, so the pipeline starts without ``LoadMedicalImage``.

    Args:
        num_samples (int): Number of phantoms. Defaults to 64.
        img_size (int): Image side in pixels. Defaults to 256.
        content_seed (int): Seed of the phantoms' content. Defaults to 0.
        p_nodule, p_cardiomegaly, p_effusion (float): Finding probabilities (0.4 each).
        nodule_radius, nodule_amplitude (tuple[float, float]): Nodule size and density
            ranges (see :func:`sample_chest_phantom_params`).
        **kwargs: Arguments of ``MedicalImageDataset`` (``pipeline``, ``seed``, ...).
    """

    METAINFO = dict(classes=PHANTOM_CLASSES)

    def __init__(self,
                 num_samples: int = 64,
                 img_size: int = 256,
                 content_seed: int = 0,
                 p_nodule: float = 0.4,
                 p_cardiomegaly: float = 0.4,
                 p_effusion: float = 0.4,
                 nodule_radius: Tuple[float, float] = NODULE_RADIUS,
                 nodule_amplitude: Tuple[float, float] = NODULE_AMPLITUDE,
                 **kwargs) -> None:
        if num_samples < 1 or img_size < 16:
            raise ValueError('ChestPhantomDataset needs num_samples >= 1 and img_size >= 16, '
                             f'got {num_samples} and {img_size}.')
        self.num_samples = int(num_samples)
        self.img_size = int(img_size)
        self.content_seed = int(content_seed)
        self.probabilities = (float(p_nodule), float(p_cardiomegaly), float(p_effusion))
        self.nodule_kwargs = dict(nodule_radius=tuple(map(float, nodule_radius)),
                                  nodule_amplitude=tuple(map(float, nodule_amplitude)))
        kwargs.setdefault('check_files', 'none')
        super().__init__(**kwargs)

    def load_data_list(self) -> List[dict]:
        """Draw the parameters of every phantom (the images are drawn on access)."""
        data_list = []
        for i in range(self.num_samples):
            params = sample_chest_phantom_params([self.content_seed, i], *self.probabilities,
                                                 **self.nodule_kwargs)
            data_list.append(dict(phantom=params, gt_label=phantom_gt_label(params)))
        return data_list

    def load_sample(self, results: dict) -> dict:
        """Render the phantom into ``results['img']``."""
        img = render_chest_phantom(results.pop('phantom'), self.img_size)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results


# ---------------------------------------------------------------------------- demo data

# Columns of the phantom labels in the ChestX-ray14 lists.
_CXR14_COLUMNS = dict(nodule=5, cardiomegaly=1, effusion=2)
_DEMO_DICOM = 'RG1_UNCI.dcm'
_MANIFEST = 'demo_manifest.json'


def _pydicom_data_file(name: str) -> str:
    """Path of a file shipped by the ``pydicom-data`` package (module ``data_store``)."""
    try:
        import data_store
    except ImportError:
        raise ImportError(
            f'The demo data includes the real chest radiograph {name} of the `pydicom-data` '
            'package, which is not installed: `pip install pydicom-data` (or call '
            'make_demo_dataset(..., include_dicom=False)).') from None
    path = osp.join(osp.dirname(data_store.__file__), 'data', name)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{name} is missing from the pydicom-data package at "{path}"; '
                                'reinstall it: `pip install --force-reinstall pydicom-data`.')
    return path


def _write_atomic(path: str, data: bytes) -> None:
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'wb') as f:
        f.write(data)
    os.replace(tmp, path)


def _list_line(name: str, labels: Optional[dict]) -> str:
    columns = ['0'] * 14
    for key, col in _CXR14_COLUMNS.items():
        if labels and labels[key]:
            columns[col] = '1'
    return ' '.join([name] + columns)


def make_demo_dataset(out_dir: str = 'data/demo',
                      num_train: int = 96,
                      num_val: int = 32,
                      size: int = 256,
                      seed: int = 0,
                      include_dicom: bool = True,
                      num_test: int = 0,
                      nodule_radius: Tuple[float, float] = NODULE_RADIUS,
                      nodule_amplitude: Tuple[float, float] = NODULE_AMPLITUDE) -> dict:
    """Write the embedded demo dataset in the ChestX-ray14 layout.

    ``out_dir`` receives ``phantom_train_XXXXX.png`` / ``phantom_val_XXXXX.png`` (8-bit gray
    phantoms; train phantom ``i`` is drawn from ``default_rng([seed, 0, i])``, val from
    ``[seed, 1, i]``), a copy of pydicom-data's ``RG1_UNCI.dcm`` (a real CR chest radiograph,
    1955 x 1841, 16-bit, MONOCHROME1; listed last in ``train.txt``, all labels 0) and the lists
    ``train.txt`` / ``val.txt`` in the official format with the phantom labels in the Nodule,
    Cardiomegaly and Effusion columns. Use it with ``data_root=out_dir``,
    ``data_prefix=dict(img_path='')``.

    Deterministic (the same arguments give the same bytes) and idempotent: when
    ``demo_manifest.json`` (written last) records the same arguments and every file is there
    with its recorded size, nothing is written.

    Args:
        out_dir (str): The output folder. Defaults to 'data/demo'.
        num_train (int): Number of training phantoms. Defaults to 96.
        num_val (int): Number of validation phantoms. Defaults to 32.
        size (int): Phantom side in pixels. Defaults to 256.
        seed (int): Content seed. Defaults to 0.
        include_dicom (bool): Add the real radiograph. Defaults to True.
        num_test (int): Number of test phantoms (``phantom_test_XXXXX.png`` from
            ``[seed, 2, i]``, listed in ``test.txt``); 0 writes no test split. Defaults to 0.
        nodule_radius, nodule_amplitude (tuple[float, float]): Nodule size and density
            ranges (see :func:`sample_chest_phantom_params`); smaller, fainter nodules make
            a harder task.

    Returns:
        dict: ``out_dir``, ``train_list``, ``val_list`` (and ``test_list``),
        ``num_train``/``num_val``/``num_test`` (list lines) and ``written`` (False when the
        folder was already complete).
    """
    args = dict(num_train=int(num_train), num_val=int(num_val), size=int(size), seed=int(seed),
                include_dicom=bool(include_dicom), version=1)
    nodule_kwargs = dict(nodule_radius=tuple(map(float, nodule_radius)),
                         nodule_amplitude=tuple(map(float, nodule_amplitude)))
    # recorded only when not the defaults, so folders written before they existed stay valid
    if num_test:
        args['num_test'] = int(num_test)
    for key, default in (('nodule_radius', NODULE_RADIUS), ('nodule_amplitude',
                                                            NODULE_AMPLITUDE)):
        if nodule_kwargs[key] != tuple(default):
            args[key] = list(nodule_kwargs[key])
    out_dir = osp.abspath(out_dir)
    summary = dict(out_dir=out_dir, train_list=osp.join(out_dir, 'train.txt'),
                   val_list=osp.join(out_dir, 'val.txt'),
                   num_train=args['num_train'] + int(include_dicom), num_val=args['num_val'],
                   num_test=int(num_test))
    if num_test:
        summary['test_list'] = osp.join(out_dir, 'test.txt')
    manifest_path = osp.join(out_dir, _MANIFEST)
    if _demo_is_complete(out_dir, manifest_path, args):
        return dict(summary, written=False)

    os.makedirs(out_dir, exist_ok=True)
    files: Dict[str, int] = {}
    splits = [('train', 0, num_train), ('val', 1, num_val)]
    if num_test:
        splits.append(('test', 2, num_test))
    lines: Dict[str, List[str]] = {split: [] for split, _, _ in splits}
    for split, split_id, count in splits:
        for i in range(count):
            params = sample_chest_phantom_params([seed, split_id, i], **nodule_kwargs)
            name = f'phantom_{split}_{i:05d}.png'
            ok, buf = cv2.imencode('.png', render_chest_phantom(params, size),
                                   [cv2.IMWRITE_PNG_COMPRESSION, 6])
            if not ok:
                raise RuntimeError(f'OpenCV could not encode {name}.')
            _write_atomic(osp.join(out_dir, name), buf.tobytes())
            files[name] = len(buf)
            lines[split].append(_list_line(name, params['labels']))
    if include_dicom:
        src = _pydicom_data_file(_DEMO_DICOM)
        dst = osp.join(out_dir, _DEMO_DICOM)
        if not (osp.isfile(dst) and osp.getsize(dst) == osp.getsize(src)):
            shutil.copyfile(src, dst + '.tmp')
            os.replace(dst + '.tmp', dst)
        files[_DEMO_DICOM] = osp.getsize(dst)
        lines['train'].append(_list_line(_DEMO_DICOM, None))
    for split in lines:
        data = ('\n'.join(lines[split]) + '\n').encode()
        _write_atomic(osp.join(out_dir, f'{split}.txt'), data)
        files[f'{split}.txt'] = len(data)
    manifest = dict(args=args, files=files,
                    digest=hashlib.sha1(json.dumps(files, sort_keys=True).encode()).hexdigest())
    _write_atomic(manifest_path, (json.dumps(manifest, indent=1, sort_keys=True) + '\n').encode())
    return dict(summary, written=True)


def _demo_is_complete(out_dir: str, manifest_path: str, args: dict) -> bool:
    try:
        with open(manifest_path, encoding='utf-8') as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return False
    if manifest.get('args') != args:
        return False
    return all(
        osp.isfile(osp.join(out_dir, name)) and osp.getsize(osp.join(out_dir, name)) == size
        for name, size in manifest.get('files', {}).items())
