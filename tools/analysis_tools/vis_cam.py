"""Weakly supervised localisation: class activation maps of a fine-tuned classifier as PNG overlays.

For each chosen image the tool writes one PNG: the network's input view, then one heat-map
overlay per chosen class, captioned with the class, its predicted probability and (when the
dataset has labels) the ground truth, then the colour scale (each map divided by its maximum:
1 at the top, 0 at the bottom). ``cams.json`` lists, per image and class, the
probability, the label and the map's peak (x, y in input pixels).

Images come from the config's ``--split`` dataset (``--indices``) or from files (``--img``,
PNG/JPEG/DICOM, read like the dataset reads them). Either way they go through the
deterministic validation pipeline of the config (resize + centre crop, no ten-crop), so
the map covers exactly what the classifier saw.

Examples::

    python tools/analysis_tools/vis_cam.py \\
        configs/benchmarks/classification/resnet18_finetune_1xb16-adam-10e_demo.py \\
        work_dirs/resnet18_finetune_1xb16-adam-10e_demo/best_auc_epoch_7.pth \\
        --indices 0 1 2 3 --classes Nodule Effusion --out-dir work_dirs/cam
    python tools/analysis_tools/vis_cam.py CONFIG CKPT --img data/demo/RG1_UNCI.dcm \\
        --method gradcam --target-layer backbone.encoder.layer3
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys
from typing import List, Optional

try:
    import dira_mm  # noqa: F401
except ImportError:
    sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..', '..')))
    import dira_mm  # noqa: F401

import cv2
import numpy as np
import torch
from mmengine.config import Config, DictAction

from dira_mm.utils import leaf_dataset_cfg


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Class activation maps of a classifier as PNG overlays.')
    parser.add_argument('config', help='classification config file')
    parser.add_argument('checkpoint', help='trained classifier checkpoint (with its head)')
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--img', nargs='+', help='image files (PNG/JPEG/DICOM)')
    source.add_argument('--indices', type=int, nargs='+',
                        help='sample indices of the --split dataset (default: 0..7)')
    parser.add_argument('--split', default='test', choices=['train', 'val', 'test'],
                        help='dataset of --indices (default: test)')
    parser.add_argument('--classes', nargs='+',
                        help='class names or indices to map (default: all)')
    parser.add_argument('--method', default='cam', choices=['cam', 'gradcam'])
    parser.add_argument('--target-layer',
                        help="gradcam's layer, e.g. backbone.encoder.layer3 (default: last)")
    parser.add_argument('--alpha', type=float, default=0.45, help='heat-map opacity')
    parser.add_argument('--scale', type=int, default=2, help='upscale the PNG panels')
    parser.add_argument('--out-dir', default='work_dirs/cam', help='output folder')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys')
    args = parser.parse_args(argv)
    if args.target_layer and args.method != 'gradcam':
        parser.error('--target-layer applies to --method gradcam only.')
    return args


def _class_indices(wanted: Optional[List[str]], names: List[str]) -> List[int]:
    if not wanted:
        return list(range(len(names)))
    out = []
    for item in wanted:
        if item in names:
            out.append(names.index(item))
        elif item.isdigit() and int(item) < len(names):
            out.append(int(item))
        else:
            raise SystemExit(f'--classes: "{item}" is not one of {names} (or an index).')
    return out


def build(args):
    """The classifier (weights loaded, eval mode), the deterministic pipeline, the class names
    and the dataset of ``--split`` (None with ``--img``)."""
    from mmengine.dataset import Compose
    from mmengine.registry import DefaultScope
    from mmengine.runner import load_checkpoint

    from dira_mm.registry import DATASETS, MODELS

    cfg = Config.fromfile(args.config, lazy_import=False)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'checkpoint "{args.checkpoint}" does not exist.')
    DefaultScope.get_instance(f'vis_cam_{os.getpid()}', scope_name='dira_mm')
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.pretrained = None  # the checkpoint below has every weight
    model = MODELS.build(model_cfg)
    load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
    model.to(args.device).eval()
    pipeline_cfg = copy.deepcopy(leaf_dataset_cfg(cfg.val_dataloader.dataset).pipeline)
    dataset = None
    if not args.img:
        dataset_cfg = copy.deepcopy(cfg[f'{args.split}_dataloader'].dataset)
        leaf_dataset_cfg(dataset_cfg).pipeline = pipeline_cfg
        dataset = DATASETS.build(dataset_cfg)
        names = list(dataset.metainfo.get('classes') or [])
    else:
        names = list(DATASETS.build(copy.deepcopy(cfg.val_dataloader.dataset)).metainfo.get(
            'classes') or [])
    if not names:
        names = [f'class_{i}' for i in range(model.head.out_features)]
    return model, Compose(pipeline_cfg), names, dataset


def _samples(args, pipeline, dataset):
    if args.img:
        for i, path in enumerate(args.img):
            if not osp.isfile(path):
                raise SystemExit(f'--img: "{path}" does not exist.')
            yield i, osp.splitext(osp.basename(path))[0], pipeline(dict(img_path=path))
    else:
        indices = args.indices if args.indices is not None else range(min(8, len(dataset)))
        for i in indices:
            if not 0 <= i < len(dataset):
                raise SystemExit(f'--indices: {i} is outside the {args.split} set '
                                 f'(0..{len(dataset) - 1}).')
            data = dataset[i]
            path = data['data_samples'].metainfo.get('img_path', f'sample_{i}')
            yield i, osp.splitext(osp.basename(str(path)))[0], data


def main(argv=None) -> dict:
    args = parse_args(argv)
    from dira_mm.visualization import (captioned_row, class_activation_maps, colour_bar,
                                       grad_cams, normalize_cams, overlay_heatmap)

    model, pipeline, names, dataset = build(args)
    classes = _class_indices(args.classes, names)
    os.makedirs(args.out_dir, exist_ok=True)
    summary = dict(config=args.config, checkpoint=args.checkpoint, method=args.method,
                   target_layer=args.target_layer, classes=[names[k] for k in classes],
                   images=[])
    for index, stem, data in _samples(args, pipeline, dataset):
        batch = model.data_preprocessor(dict(inputs=[data['inputs']],
                                             data_samples=[data['data_samples']]), False)
        inputs = batch['inputs'].to(args.device)
        if args.method == 'cam':
            maps, logits = class_activation_maps(model, inputs, classes)
        else:
            maps, logits = grad_cams(model, inputs, classes, target_layer=args.target_layer)
        heat = normalize_cams(maps)[0].cpu().numpy()
        probs = torch.sigmoid(logits[0]).cpu().numpy()
        view = data['inputs'].numpy()
        gt = data['data_samples'].get('gt_label')
        gt = None if gt is None else np.asarray(gt)
        size = (view.shape[-1] * args.scale, view.shape[-2] * args.scale)
        gray = cv2.resize(view[0] if view.ndim == 3 else view, size,
                          interpolation=cv2.INTER_LINEAR)
        panels, captions, records = [gray], [stem[:24]], []
        for j, k in enumerate(classes):
            big = cv2.resize(heat[j], size, interpolation=cv2.INTER_LINEAR)
            panels.append(overlay_heatmap(gray, big, alpha=args.alpha))
            label = '' if gt is None else f' gt {int(gt[k]) if gt[k] >= 0 else "?"}'
            captions.append(f'{names[k]} p={probs[k]:.2f}{label}')
            y, x = np.unravel_index(int(np.argmax(maps[0, j].cpu().numpy())), heat[j].shape)
            records.append(dict(cls=names[k], prob=float(probs[k]),
                                label=None if gt is None else float(gt[k]),
                                peak_xy=[int(x), int(y)]))
        # the scale of the overlays: each map is divided by its maximum (normalize_cams)
        panels.append(colour_bar(size[1], low=0.0, high=1.0))
        captions.append('CAM/max')
        out = osp.join(args.out_dir, f'{index:05d}_{stem}.png')
        if not cv2.imwrite(out, captioned_row(panels, captions)):
            raise SystemExit(f'Could not write "{out}".')
        summary['images'].append(dict(index=int(index), name=stem, png=out, cams=records))
    with open(osp.join(args.out_dir, 'cams.json'), 'w') as f:
        json.dump(summary, f, indent=2)
    print(f'{len(summary["images"])} CAM overlays ({args.method}) of '
          f'{", ".join(summary["classes"])} in {args.out_dir}')
    return summary


if __name__ == '__main__':
    main()
