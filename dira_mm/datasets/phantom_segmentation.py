"""A lung segmentation set of chest phantoms on disk, in the Montgomery layout.

Segmentation fine-tuning can then be tried (and tested) without a download: the same
folders, file names and left/right mask split as the Montgomery County set, read by
``ImageMaskDataset`` exactly as the real one is.
"""
import os
import os.path as osp
from typing import Dict, List

import cv2
import numpy as np

from .phantom import (_write_atomic, chest_phantom_masks, render_chest_phantom,
                      sample_chest_phantom_params)

__all__ = ['LUNG_STRUCTURES', 'phantom_lung_masks', 'make_phantom_lung_dataset']

#: Which phantom mask is "the lung": ``air`` (the aerated lung, what a lung-field annotation
#: outlines: lungs minus heart and effusion) or ``lungs`` (the whole lung ellipses).
LUNG_STRUCTURES = ('air', 'lungs')
_IMAGE_DIR = 'CXR_png'
_MASK_DIRS = {'left': osp.join('ManualMask', 'leftMask'),
              'right': osp.join('ManualMask', 'rightMask')}


def phantom_lung_masks(params: dict, size: int, structure: str = 'air') -> Dict[str, np.ndarray]:
    """The patient's ``left`` and ``right`` lung masks (bool ``(size, size)``) of a phantom.

    The phantom is a PA view: the patient's right lung is on the image's left, so ``right``
    is the part of ``structure`` left of the midline and ``left`` the part right of it.
    """
    if structure not in LUNG_STRUCTURES:
        raise ValueError(f'structure must be one of {LUNG_STRUCTURES}, got {structure!r}.')
    lungs = chest_phantom_masks(params, size)[structure]
    columns = (np.arange(size) + 0.5) / size
    image_right = np.broadcast_to(columns[None, :] > params['cx'], lungs.shape)
    return dict(left=lungs & image_right, right=lungs & ~image_right)


def _write_png(path: str, img: np.ndarray) -> None:
    ok, buf = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise RuntimeError(f'OpenCV could not encode {path}.')
    _write_atomic(path, buf.tobytes())


def make_phantom_lung_dataset(out_dir: str = 'data/phantom_lungs',
                              num_train: int = 64,
                              num_val: int = 16,
                              num_test: int = 16,
                              size: int = 128,
                              seed: int = 0,
                              structure: str = 'air') -> dict:
    """Write phantom chest radiographs and their lung masks like the Montgomery set.

    ``out_dir/CXR_png/phantom_lung_{train,val}_XXXXX.png`` (8-bit gray images),
    ``out_dir/ManualMask/{leftMask,rightMask}/<same name>`` (0/255 masks of the patient's
    left and right lung) and the lists ``train.txt`` / ``val.txt`` / ``test.txt`` (image
    names). Train phantom ``i`` is drawn from ``sample_chest_phantom_params([seed, 10, i])``,
    val from ``[seed, 11, i]``, test from ``[seed, 12, i]`` (not the phantoms of the
    pre-training demo data). Deterministic: the same arguments give the same bytes.

    Read it with ``ImageMaskDataset(data_root=out_dir, ann_file='train.txt',
    data_prefix=dict(img_path='CXR_png', seg_map_path=['ManualMask/leftMask',
    'ManualMask/rightMask']))``.

    Returns:
        dict: ``out_dir``, ``train_list``, ``val_list``, ``test_list`` and the counts.
    """
    if size < 16 or num_train < 1 or min(num_val, num_test) < 0:
        raise ValueError('make_phantom_lung_dataset needs size >= 16, num_train >= 1 and '
                         f'num_val, num_test >= 0, got {size}, {num_train}, {num_val}, '
                         f'{num_test}.')
    out_dir = osp.abspath(out_dir)
    for folder in [_IMAGE_DIR] + list(_MASK_DIRS.values()):
        os.makedirs(osp.join(out_dir, folder), exist_ok=True)
    lists: Dict[str, List[str]] = dict(train=[], val=[], test=[])
    for split, split_id, count in (('train', 10, num_train), ('val', 11, num_val),
                                   ('test', 12, num_test)):
        for i in range(count):
            params = sample_chest_phantom_params([seed, split_id, i])
            name = f'phantom_lung_{split}_{i:05d}.png'
            _write_png(osp.join(out_dir, _IMAGE_DIR, name), render_chest_phantom(params, size))
            for side, mask in phantom_lung_masks(params, size, structure).items():
                _write_png(osp.join(out_dir, _MASK_DIRS[side], name),
                           mask.astype(np.uint8) * 255)
            lists[split].append(name)
    for split, names in lists.items():
        _write_atomic(osp.join(out_dir, f'{split}.txt'), ''.join(f'{n}\n' for n in names).encode())
    summary = dict(out_dir=out_dir, num_train=num_train, num_val=num_val, num_test=num_test)
    summary.update({f'{split}_list': osp.join(out_dir, f'{split}.txt') for split in lists})
    return summary
