"""Record the golden outputs of today's 2-D pipeline (issue 9, section 1).

Before the pipeline is refactored to an n-dimensional contract, this pins

* the outputs of every 2-D transform (alone, with the arguments of the demo, ChestX-ray14,
  classification and segmentation configs, and each DiRADistortion branch) and of the full
  configured pipelines, for fixed per-sample generators ``default_rng([seed, 0, index])``,
  on inputs generated here (demo phantoms, a phantom lung mask and the real DICOM
  radiograph of pydicom-data);
* a seeded two-iteration training run of the tiny DiRA-MoCo-v2 demo config
  (``tests/test_e2e/conftest.py``): each loss term per iteration and checksums of every
  floating tensor of the model's state dict afterwards.

Integer outputs (pixels, boxes, flips, metainfo) are compared exactly; float results of the
training step with ``rtol=1e-5`` (kernels may differ across CPUs).
``tests/test_datasets/test_golden_2d.py`` compares against ``golden_2d.npz``.

Regenerate ONLY when a change of the 2-D outputs is intended:

    .venv/bin/python tests/data/golden/make_golden.py
"""
import copy
import hashlib
import json
import os
import os.path as osp
import sys
import tempfile
from typing import Dict, List, Tuple

import numpy as np
import torch

HERE = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(osp.dirname(osp.dirname(HERE)))
GOLDEN = osp.join(HERE, 'golden_2d.npz')
REGEN_CMD = '.venv/bin/python tests/data/golden/make_golden.py'
SEEDS = (0, 1, 2, 3, 4, 5)
# arrays stored raw beside their digest (for the failure messages): up to RAW_MAX_BYTES
# for the first seed of each case, up to 256 bytes (boxes, crop boxes) for every seed
RAW_MAX_BYTES = 4096
PHANTOM_SIZE = 96

_VIEW = [
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, prob=0.8),
    dict(type='GaussianBlur', sigma=(0.1, 2.0), prob=0.5),
    dict(type='RandomFlip', prob=0.5),
]
_DIRA_VIEWS = dict(type='DiRAViews', num_views=2,
                   crop=dict(type='RandomResizedCrop', size=64, scale=(0.2, 1.0)),
                   view_pipeline=_VIEW,
                   distortion=dict(type='DiRADistortion', official_overlap_check=False),
                   distort_views=(0, 1), with_target=True, target_view=0, flip_target=True)
_ONLY = dict(inpaint=dict(inpaint_prob=1.0, outpaint_prob=0.0, swap_prob=0.0),
             outpaint=dict(inpaint_prob=0.0, outpaint_prob=1.0, swap_prob=0.0),
             swap=dict(inpaint_prob=0.0, outpaint_prob=0.0, swap_prob=1.0))


def transform_cases() -> Dict[str, Tuple[str, List[dict]]]:
    """``name -> (input, pipeline)``; input 'png' (loaded phantom), 'dicom' (loaded real
    radiograph), 'seg' (phantom + lung mask) or 'png_path'/'dicom_path' (from the file)."""
    cases = {
        # loading
        'LoadMedicalImage/png': ('png_path', [dict(type='LoadMedicalImage')]),
        'LoadMedicalImage/dicom': ('dicom_path', [dict(type='LoadMedicalImage')]),
        # the pre-training transforms, alone, as configured
        'RandomResizedCrop/demo': ('png', [dict(type='RandomResizedCrop', size=64,
                                                scale=(0.2, 1.0))]),
        'RandomResizedCrop/dicom': ('dicom', [dict(type='RandomResizedCrop', size=64,
                                                   scale=(0.2, 1.0))]),
        'RandomResizedCrop/cls': ('png', [dict(type='RandomResizedCrop', size=64,
                                               scale=(0.08, 1.0))]),
        'ColorJitter/dira': ('png', [_VIEW[0]]),
        'ColorJitter/seg': ('png', [dict(type='ColorJitter', brightness=0.2, contrast=0.2,
                                         saturation=0.0, hue=0.0, prob=1.0)]),
        'GaussianBlur/dira': ('png', [dict(_VIEW[1], prob=1.0)]),
        'RandomFlip/dira': ('png', [_VIEW[2]]),
        'RandomFlip/vertical': ('png', [dict(type='RandomFlip', prob=0.5,
                                             direction='vertical')]),
        'DiRADistortion/default': ('png', [dict(type='DiRADistortion',
                                                official_overlap_check=False)]),
        'DiRADistortion/swap_official_overlap': (
            'png', [dict(type='DiRADistortion', official_overlap_check=True, **_ONLY['swap'])]),
        # the classification / segmentation transforms
        'Resize/73': ('png', [dict(type='Resize', size=73)]),
        'Resize+CenterCrop': ('png', [dict(type='Resize', size=73),
                                      dict(type='CenterCrop', size=64)]),
        'Resize+TenCrop': ('png', [dict(type='Resize', size=73), dict(type='TenCrop', size=64)]),
        'RandomRotation/7': ('png', [dict(type='RandomRotation', degrees=7)]),
        'SegResize/nearest': ('seg', [dict(type='SegResize', size=64,
                                           interpolation='nearest')]),
        'SegRandomResizedCrop/montgomery': (
            'seg', [dict(type='SegRandomResizedCrop', size=64, scale=((156 / 224)**2, 1.0),
                         ratio=(1.0, 1.0), prob=1.0, interpolation='bilinear')]),
        'SegRandomFlip': ('seg', [dict(type='SegRandomFlip', prob=0.5)]),
        # the whole configured pipelines
        'pipeline/dira_train': ('png_path', [dict(type='LoadMedicalImage'), _DIRA_VIEWS,
                                             dict(type='PackDiRAInputs')]),
        'pipeline/dira_train_dicom': ('dicom_path', [dict(type='LoadMedicalImage'), _DIRA_VIEWS,
                                                     dict(type='PackDiRAInputs')]),
        'pipeline/dira_val_keep_clean': ('png_path', [dict(type='LoadMedicalImage'),
                                                      dict(_DIRA_VIEWS, keep_clean=True),
                                                      dict(type='PackDiRAInputs')]),
        'pipeline/views_only': ('png_path', [dict(type='LoadMedicalImage'),
                                             dict(_DIRA_VIEWS, distortion=None,
                                                  with_target=False),
                                             dict(type='PackDiRAInputs')]),
        'pipeline/dira_official_target': ('png_path', [dict(type='LoadMedicalImage'),
                                                       dict(_DIRA_VIEWS, flip_target=False),
                                                       dict(type='PackDiRAInputs')]),
        'pipeline/cls_train': ('png_path', [dict(type='LoadMedicalImage'),
                                            dict(type='RandomResizedCrop', size=64,
                                                 scale=(0.08, 1.0)),
                                            dict(type='RandomFlip', prob=0.5),
                                            dict(type='RandomRotation', degrees=7),
                                            dict(type='PackClsInputs')]),
        'pipeline/cls_test_tencrop': ('png_path', [dict(type='LoadMedicalImage'),
                                                   dict(type='Resize', size=73),
                                                   dict(type='TenCrop', size=64),
                                                   dict(type='PackClsInputs')]),
        'pipeline/seg_train': ('seg_path', [
            dict(type='LoadMedicalImage'), dict(type='LoadSegMask'),
            dict(type='SegResize', size=64, interpolation='nearest'),
            dict(type='ColorJitter', brightness=0.2, contrast=0.2, saturation=0.0, hue=0.0,
                 prob=0.3),
            dict(type='SegRandomResizedCrop', size=64, scale=((156 / 224)**2, 1.0),
                 ratio=(1.0, 1.0), prob=0.25, interpolation='bilinear'),
            dict(type='PackSegInputs')]),
    }
    for mode, probs in _ONLY.items():
        cases[f'DiRADistortion/{mode}'] = ('png', [dict(type='DiRADistortion',
                                                        official_overlap_check=False, **probs)])
    return cases


def make_inputs(tmp: str) -> Dict[str, dict]:
    """Write the demo phantoms (with the real radiograph) and a lung mask into ``tmp``."""
    import cv2

    from dira_mm.datasets.phantom import (chest_phantom_masks, make_demo_dataset,
                                          sample_chest_phantom_params)
    info = make_demo_dataset(tmp, num_train=1, num_val=1, size=PHANTOM_SIZE, seed=0,
                             include_dicom=True)
    png = osp.join(info['out_dir'], 'phantom_train_00000.png')
    dicom = osp.join(info['out_dir'], 'RG1_UNCI.dcm')
    assert osp.isfile(png) and osp.isfile(dicom), os.listdir(info['out_dir'])
    lungs = chest_phantom_masks(sample_chest_phantom_params([0, 0, 0]), PHANTOM_SIZE)['lungs']
    mask = osp.join(tmp, 'mask.png')
    cv2.imwrite(mask, lungs.astype(np.uint8) * 255)
    return dict(png=png, dicom=dicom, mask=mask)


def _results(kind: str, paths: Dict[str, str], loaded: Dict[str, np.ndarray]) -> dict:
    if kind == 'png_path':
        return dict(img_path=paths['png'])
    if kind == 'dicom_path':
        return dict(img_path=paths['dicom'])
    if kind == 'seg_path':
        return dict(img_path=paths['png'], seg_map_path=paths['mask'])
    img = loaded['png' if kind == 'seg' else kind].copy()
    res = dict(img_path=osp.basename(paths['png' if kind == 'seg' else kind]), img=img,
               img_shape=img.shape[:2], ori_shape=img.shape[:2])
    if kind == 'seg':
        res['gt_mask'] = loaded['mask'].copy()
    return res


def _digest(arr: np.ndarray) -> str:
    arr = np.ascontiguousarray(arr)
    h = hashlib.sha256(f'{arr.dtype.str}{arr.shape}'.encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def flatten(obj, prefix: str, out: Dict[str, object]) -> None:
    """Arrays/tensors -> numpy arrays; everything else -> a JSON-able value (paths as
    basenames). Skips the generator ``rng``."""
    from mmengine.structures import BaseDataElement
    if isinstance(obj, BaseDataElement):
        for key in sorted(obj.metainfo_keys()):
            flatten(obj.metainfo[key], f'{prefix}/meta.{key}', out)
        for key in sorted(obj.keys()):
            flatten(obj.get(key), f'{prefix}/{key}', out)
    elif isinstance(obj, dict):
        for key in sorted(obj):
            if key == 'rng':
                continue
            flatten(obj[key], f'{prefix}/{key}', out)
    elif isinstance(obj, (list, tuple)):
        out[f'{prefix}/len'] = len(obj)
        for i, item in enumerate(obj):
            flatten(item, f'{prefix}/{i}', out)
    elif isinstance(obj, torch.Tensor):
        out[prefix] = obj.detach().cpu().numpy()
    elif isinstance(obj, np.ndarray):
        out[prefix] = obj
    elif isinstance(obj, str):
        out[prefix] = osp.basename(obj) if (os.sep in obj) else obj
    elif isinstance(obj, (bool, np.bool_)):
        out[prefix] = bool(obj)
    elif isinstance(obj, (int, np.integer)):
        out[prefix] = int(obj)
    elif isinstance(obj, (float, np.floating)):
        out[prefix] = repr(float(obj))  # exact
    elif obj is None:
        out[prefix] = None
    else:
        out[prefix] = repr(obj)


def run_transforms(cases=None, seeds=SEEDS) -> Dict[str, Dict[str, object]]:
    """``'<case>|seed=<s>' -> {flattened output key: value}`` for every case and seed."""
    import dira_mm.datasets  # noqa: F401 (registers the transforms)
    from mmengine.dataset import Compose

    from dira_mm.datasets.readers import read_image
    from dira_mm.registry import TRANSFORMS
    cases = transform_cases() if cases is None else cases
    outputs = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_inputs(tmp)
        load = TRANSFORMS.build(dict(type='LoadMedicalImage'))
        loaded = dict(png=load(dict(img_path=paths['png']))['img'],
                      dicom=load(dict(img_path=paths['dicom']))['img'],
                      mask=(read_image(paths['mask']) > 0).astype(np.uint8))
        for name, (kind, pipeline) in cases.items():
            compose = Compose([TRANSFORMS.build(copy.deepcopy(t)) for t in pipeline])
            for index, seed in enumerate(seeds):
                res = _results(kind, paths, loaded)
                res['rng'] = np.random.default_rng([seed, 0, index])
                out = compose(res)
                flat: Dict[str, object] = {}
                flatten(out, '', flat)
                outputs[f'{name}|seed={seed}'] = flat
    return outputs


class _CaptureLosses:
    """A Hook recording ``outputs`` (log_vars) of each training iteration."""

    def __new__(cls, store):
        from mmengine.hooks import Hook

        class Capture(Hook):
            priority = 'VERY_LOW'

            def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
                store.append({k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
                              for k, v in (outputs or {}).items()})
        return Capture()


def run_train_step(iters: int = 2) -> Dict[str, np.ndarray]:
    """A seeded run of the tiny DiRA demo config, ``iters`` iterations of batch 4 with the
    adversary on from the start; each loss term per iteration and, afterwards, float64
    ``[sum, abs-sum]`` of every floating tensor of the model's state dict."""
    from mmengine.runner import Runner
    sys.path.insert(0, osp.join(REPO, 'tests'))
    from helpers import e2e_helpers

    from dira_mm.datasets.phantom import make_demo_dataset
    from dira_mm.models.utils import unwrap
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        data = osp.join(tmp, 'data')
        # 4 * iters - 1 phantoms + the real radiograph = `iters` batches of 4
        make_demo_dataset(data, num_train=4 * iters - 1, num_val=1, size=PHANTOM_SIZE, seed=0)
        cfg = e2e_helpers().tiny_config(data, osp.join(tmp, 'work'), mode='dira', epochs=1,
                                        adversarial_begin=0)
        cfg.train_dataloader.sampler = dict(type='DefaultSampler', shuffle=False)
        cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
        cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
        cfg.custom_hooks = [h for h in cfg.custom_hooks
                            if h['type'] != 'ReconstructionVisHook']
        cfg.default_hooks.checkpoint = None
        cfg.log_level = 'WARNING'
        losses: List[Dict[str, float]] = []
        # One intra-op thread: the reduction order (so the last bits) depends on the thread
        # count, and Adam's normalised step turns such bits of a near-zero gradient into a
        # difference of the order of the learning rate (seen in the discriminator's biases).
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            runner = Runner.from_cfg(cfg)
            runner.register_hook(_CaptureLosses(losses))
            runner.train()
        finally:
            torch.set_num_threads(threads)
        model = unwrap(runner.model)
    if len(losses) != iters:
        raise RuntimeError(f'expected {iters} training iterations, ran {len(losses)}')
    out: Dict[str, np.ndarray] = {}
    for key in sorted(set().union(*losses)):
        if key.startswith('loss') or key == 'momentum':
            out[f'loss/{key}'] = np.array([row.get(key, np.nan) for row in losses],
                                          dtype=np.float64)
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            t = tensor.detach().double()
            out[f'param/{name}'] = np.array([t.sum().item(), t.abs().sum().item()])
    return out


def pack(transforms: Dict[str, Dict[str, object]], train: Dict[str, np.ndarray]
         ) -> Dict[str, np.ndarray]:
    """The arrays of ``golden_2d.npz``: a JSON manifest of every transform output (values,
    or dtype/shape/sha256 of arrays), raw copies of the small arrays, the training record."""
    manifest: Dict[str, Dict[str, object]] = {}
    arrays: Dict[str, np.ndarray] = {}
    for case, flat in transforms.items():
        entry = {}
        for key, value in flat.items():
            if isinstance(value, np.ndarray):
                entry[key] = dict(dtype=value.dtype.str, shape=list(value.shape),
                                  sha256=_digest(value))
                first = case.endswith(f'|seed={SEEDS[0]}')
                if value.nbytes <= (RAW_MAX_BYTES if first else 256) or \
                        key.endswith('distortion_boxes'):
                    arrays[f'raw::{case}::{key}'] = value
            else:
                entry[key] = dict(value=value)
        manifest[case] = entry
    arrays['transforms_manifest'] = np.array(json.dumps(manifest, sort_keys=True))
    for key, value in train.items():
        arrays[f'train::{key}'] = value
    return arrays


def main() -> None:
    transforms = run_transforms()
    train = run_train_step()
    np.savez_compressed(GOLDEN, **pack(transforms, train))
    print(f'wrote {GOLDEN} ({osp.getsize(GOLDEN) / 1024:.1f} KiB): '
          f'{len(transforms)} transform outputs, {len(train)} training records')


if __name__ == '__main__':
    main()
