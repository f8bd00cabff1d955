"""Every shipped full-size pre-training config trains one short epoch (slow; `make test-all`).

The smoke-test override set documented in the README (`SMOKE_OPTIONS`) is applied to the real
configs at their real widths and image size (ResNet-50 U-Net at 224, the methods' projectors),
on a few images laid out exactly as each config expects (ChestX-ray14 lists, the CheXpert
CSV release folder, a folder of images). The official two-run flow runs as such: the `dira`
stage configs start from the `dir` run's checkpoint. Warm-ups longer than the run are clamped by
the preflight. Every component these configs use also runs at demo size in the default suite.

The six full-size downstream benchmark configs (classification fine-tuning and linear probe on
ChestX-ray14 and CheXpert, U-Net fine-tuning on Montgomery and SIIM-ACR) run one short epoch
the same way with `DOWNSTREAM_SMOKE_OPTIONS` (the override set of
docs/tutorials/downstream_{classification,segmentation}.md), from the checkpoint of a
full-size `dir` pre-training smoke run, on a fake Montgomery folder and a fake SIIM-ACR
DICOM + run-length CSV release; `tools/test.py` then tests each best checkpoint
(`DOWNSTREAM_TEST_OPTIONS`: ChestX-ray14's official test list with ten crops).
"""
import glob
import itertools
import os.path as osp

import cv2
import numpy as np
import pytest

from helpers import REPO, load_tool

pytestmark = pytest.mark.slow

#: the README's smoke-test override set (plus data_root, set per dataset below)
SMOKE_OPTIONS = [
    'train_cfg.max_epochs=1',
    'train_dataloader.batch_size=2', 'val_dataloader.batch_size=2',
    'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
    'train_dataloader.dataset.indices=4', 'val_dataloader.dataset.indices=2',
]
#: the downstream override set of docs/tutorials/downstream_{classification,segmentation}.md:
#: the training set is wrapped (LabelFractionDataset), so its subset is one level deeper
DOWNSTREAM_SMOKE_OPTIONS = [
    'train_cfg.max_epochs=1',
    'train_dataloader.batch_size=2', 'val_dataloader.batch_size=2',
    'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
    'train_dataloader.dataset.dataset.indices=4', 'val_dataloader.dataset.indices=2',
]
#: and for tools/test.py on the run's best checkpoint
DOWNSTREAM_TEST_OPTIONS = ['test_dataloader.batch_size=2', 'test_dataloader.num_workers=0',
                           'test_dataloader.dataset.indices=2']
CXR14 = 'Xray14_{}_official.txt'
#: the pre-training run whose checkpoint the downstream runs start from (encoder + decoder)
PRETRAIN = 'dir-mocov2_resnet50-unet_4xb64-coslr-1200e_chestxray14.py'
_RUN_IDS = itertools.count()  # mmengine's visualizer/logger are named singletons


def _labels(i: int, num: int = 14):
    """Image ``i``'s labels: class ``c`` positive when ``i + c`` is even, so any two
    consecutive images hold a positive and a negative of every class (an AUC exists)."""
    return [int((i + c) % 2 == 0) for c in range(num)]


def _png(path, rng):
    cv2.imwrite(str(path), (rng.random((256, 256)) * 255).astype(np.uint8))


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """Eight images per split for ChestX-ray14, CheXpert and a folder."""
    root = tmp_path_factory.mktemp('smoke_data')
    rng = np.random.default_rng(0)
    cxr = root / 'chestxray14'
    (cxr / 'images').mkdir(parents=True)
    for split in ('train', 'val', 'test'):
        names = [f'{split}_{i:03d}.png' for i in range(8)]
        for name in names:
            _png(cxr / 'images' / name, rng)
        (cxr / CXR14.format(split)).write_text(''.join(
            f'{n} ' + ' '.join(map(str, _labels(i))) + '\n' for i, n in enumerate(names)))
    from dira_mm.datasets import CHEXPERT_CLASSES
    release = root / 'chexpert' / 'CheXpert-v1.0-small'
    header = 'Path,Sex,Age,Frontal/Lateral,AP/PA,' + ','.join(CHEXPERT_CLASSES)
    for split, csv in (('train', 'train.csv'), ('valid', 'valid.csv')):
        lines = [header]
        for i in range(8):
            rel = f'{split}/patient{i:05d}/study1/view1_frontal.jpg'
            (release / rel).parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(release / rel), (rng.random((256, 256)) * 255).astype(np.uint8))
            lines.append(f'CheXpert-v1.0-small/{rel},Female,50,Frontal,AP,'
                         + ','.join(f'{v:.1f}' for v in _labels(i, len(CHEXPERT_CLASSES))))
        (release / csv).write_text('\n'.join(lines) + '\n')
    for split in ('train', 'val'):
        (root / 'folder' / split).mkdir(parents=True)
        for i in range(8):
            _png(root / 'folder' / split / f'{i}.png', rng)
    return root


def _data_root(config: str, data) -> str:
    if config.endswith('_chexpert.py'):
        return str(data / 'chexpert')
    if config.endswith('_folder.py'):
        return str(data / 'folder')
    return str(data / 'chestxray14')


def _full_configs():
    """The long-named full-size pre-training configs (short names are `_base_` aliases)."""
    paths = sorted(glob.glob(osp.join(REPO, 'configs', 'dira', '*.py')))
    return [osp.basename(p) for p in paths
            if '_demo' not in p and ('-' in osp.basename(p).split('_')[0])]


def _train(config: str, data, work_dir, extra=()):
    train = load_tool('train')
    root = _data_root(config, data)
    tag = f'smoke_{next(_RUN_IDS)}'
    opts = SMOKE_OPTIONS + [f'train_dataloader.dataset.data_root={root}',
                            f'val_dataloader.dataset.data_root={root}',
                            f'visualizer.name=vis_{tag}', f'experiment_name=exp_{tag}',
                            *extra]
    train.main([osp.join(REPO, 'configs', 'dira', config), '--work-dir', str(work_dir),
                '--cfg-options', *opts])
    ckpt = osp.join(str(work_dir), 'epoch_1.pth')
    assert osp.isfile(ckpt), f'{config}: no epoch_1.pth'
    return ckpt


def test_full_config_list_is_complete():
    configs = _full_configs()
    assert len(configs) == 18, configs  # 4 methods x (di, dir, dira, staged) + CheXpert + folder
    assert all(c.startswith(('di-', 'dir-', 'dira-')) for c in configs)


@pytest.mark.parametrize('config', [c for c in _full_configs() if '400e' not in c])
def test_full_config_one_epoch(config, data, tmp_path):
    ckpt = _train(config, data, tmp_path / config[:-3])
    import torch
    state = torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


@pytest.mark.parametrize('method,recipe', [('mocov2', 'coslr'), ('barlowtwins', 'lars-coslr'),
                                           ('simsiam', 'coslr'), ('byol', 'lars-coslr')])
def test_official_two_run_flow(method, recipe, data, tmp_path):
    """`dir` warm-up, then the `dira` config from its checkpoint (fresh discriminator)."""
    dir_cfg = f'dir-{method}_resnet50-unet_4xb64-{recipe}-1200e_chestxray14.py'
    dira_cfg = f'dira-{method}_resnet50-unet_4xb4-{recipe}-400e_chestxray14.py'
    warm = _train(dir_cfg, data, tmp_path / 'dir')
    _train(dira_cfg, data, tmp_path / 'dira', extra=[f'load_from={warm}'])


# ---------------------------------------------------------------- downstream benchmarks
BENCHMARKS = osp.join(REPO, 'configs', 'benchmarks')
LUNG_MASKS = ('ManualMask/leftMask', 'ManualMask/rightMask')


def _dicom(path, img):
    """A minimal 8-bit MONOCHROME2 DICOM whose SOPInstanceUID is the file name."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage
    uid = osp.basename(str(path))[:-4]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, uid
    ds.Rows, ds.Columns = img.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = img.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(str(path), enforce_file_format=True)


@pytest.fixture(scope='module')
def seg_data(tmp_path_factory):
    """Montgomery (CXR_png + left/right lung masks + split lists) and SIIM-ACR (DICOMs under
    study/series folders + train-rle.csv + split lists), eight images per split."""
    from dira_mm.datasets import rle_encode
    root = tmp_path_factory.mktemp('smoke_seg_data')
    rng = np.random.default_rng(1)
    mont = root / 'montgomery'
    for folder in ('CXR_png', *LUNG_MASKS):
        (mont / folder).mkdir(parents=True)
    siim = root / 'siim-acr'
    rows = ['ImageId, EncodedPixels']
    for s, split in enumerate(('train', 'val', 'test'), 1):
        names, ids = [], []
        for i in range(8):
            name = f'MCUCXR_{s}{i:03d}_0.png'
            _png(mont / 'CXR_png' / name, rng)
            for k, folder in enumerate(LUNG_MASKS):  # a rectangle per lung
                mask = np.zeros((256, 256), np.uint8)
                mask[40 + 4 * i:200, 20 + 130 * k:110 + 130 * k] = 255
                cv2.imwrite(str(mont / folder / name), mask)
            names.append(name)
            uid = f'1.2.276.0.7230010.3.1.4.{s}.{i}'
            img = (rng.random((256, 256)) * 255).astype(np.uint8)
            _dicom(siim / 'dicom-images-train' / f'study_{uid}' / f'series_{uid}' /
                   f'{uid}.dcm', img)
            if i % 2:  # every other image has a pneumothorax (two regions: two rows)
                for y in (30, 150):
                    mask = np.zeros((256, 256), np.uint8)
                    mask[y:y + 50, 60 + 8 * i:140] = 1
                    rows.append(f'{uid}, {rle_encode(mask)}')
            else:
                rows.append(f'{uid}, -1')
            ids.append(uid)
        (mont / f'{split}.txt').write_text(''.join(f'{n}\n' for n in names))
        (siim / f'{split}.txt').write_text(''.join(f'{u}\n' for u in ids))
    (siim / 'train-rle.csv').write_text('\n'.join(rows) + '\n')
    return root


def _downstream_configs():
    """The full-size downstream benchmark configs (not the `_demo` ones), relative paths."""
    paths = sorted(glob.glob(osp.join(BENCHMARKS, 'classification', '*.py')) +
                   glob.glob(osp.join(BENCHMARKS, 'segmentation', '*.py')))
    return [osp.relpath(p, BENCHMARKS) for p in paths if '_demo' not in p]


def _downstream_root(config: str, data, seg_data) -> str:
    for suffix, root in (('_chestxray14.py', data / 'chestxray14'),
                         ('_chexpert.py', data / 'chexpert'),
                         ('_montgomery.py', seg_data / 'montgomery'),
                         ('_siim-acr.py', seg_data / 'siim-acr')):
        if config.endswith(suffix):
            return str(root)
    raise AssertionError(f'no fake data for {config}')


@pytest.fixture(scope='module')
def pretrained(data, tmp_path_factory):
    """epoch_1.pth of a full-size `dir` MoCo-v2 smoke run (ResNet-50 U-Net, encoder and
    decoder), the checkpoint every downstream run starts from."""
    return _train(PRETRAIN, data, tmp_path_factory.mktemp('pretrain') / 'dir')


def test_downstream_config_list_is_complete():
    configs = _downstream_configs()
    assert len(configs) == 6, configs  # {finetune, linear-probe} x {cxr14, chexpert} + 2 seg
    assert sum(c.startswith('classification/') for c in configs) == 4


@pytest.mark.parametrize('config', _downstream_configs())
def test_downstream_config_one_epoch(config, data, seg_data, pretrained, tmp_path):
    import math

    import torch

    from helpers import read_scalars
    train = load_tool('train')
    root = _downstream_root(config, data, seg_data)
    tag = f'smoke_{next(_RUN_IDS)}'
    work_dir = str(tmp_path / osp.basename(config)[:-3])
    opts = DOWNSTREAM_SMOKE_OPTIONS + [
        f'model.pretrained={pretrained}',
        f'train_dataloader.dataset.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'visualizer.name=vis_{tag}', f'experiment_name=exp_{tag}']
    train.main([osp.join(BENCHMARKS, config), '--work-dir', work_dir, '--cfg-options', *opts])

    metric = 'auc' if config.startswith('classification/') else 'dice'
    for name in ('epoch_1.pth', f'best_{metric}_epoch_1.pth'):
        assert osp.isfile(osp.join(work_dir, name)), f'{config}: no {name}'
    state = torch.load(osp.join(work_dir, 'epoch_1.pth'), map_location='cpu',
                       weights_only=True)['state_dict']
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    values = [r[metric] for r in read_scalars(work_dir, single=True) if metric in r]
    assert len(values) == 1 and math.isfinite(values[0]) and 0 <= values[0] <= 100, values
    # the encoder (and the segmentor's decoder) came from the pre-training checkpoint
    log = open(glob.glob(osp.join(work_dir, '*', '*.log'))[0]).read()
    assert f'"{pretrained}"' in log and 'RESULT: OK' in log, log[-3000:]
    # the test of the best checkpoint (ChestX-ray14: the official test list and ten crops)
    test = load_tool('test')
    tag = f'smoke_{next(_RUN_IDS)}'
    metrics = test.main([
        osp.join(BENCHMARKS, config), osp.join(work_dir, f'best_{metric}_epoch_1.pth'),
        '--work-dir', osp.join(work_dir, 'test'), '--cfg-options', *DOWNSTREAM_TEST_OPTIONS,
        f'test_dataloader.dataset.data_root={root}', f'visualizer.name=vis_{tag}',
        f'experiment_name=exp_{tag}'])
    assert math.isfinite(metrics[metric]) and 0 <= metrics[metric] <= 100, metrics
