"""Fine-tuning through mmengine's Runner from a DiRA pre-training checkpoint, on the phantom
demo data: N trials with tools/benchmarks/classification_trials.py, then tools/test.py."""
import glob
import json
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from dira_mm.datasets.phantom import make_demo_dataset
from dira_mm.registry import MODELS
from helpers import load_tool, read_scalars

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'benchmarks', 'classification',
                  'resnet18_finetune_1xb16-adam-10e_demo.py')


def _dira_checkpoint(path: str) -> None:
    """{'state_dict': ...} of the DiRA demo model (ResNet-18 U-Net), at test widths."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'dira', 'dira_mocov2_demo.py'),
                          lazy_import=False)
    model = cfg.model
    model.discriminative.backbone.decoder_channels = (32, 16, 16, 8, 8)
    model.discriminative.neck.update(hid_channels=32, out_channels=16)
    model.discriminative.update(feat_dim=16, queue_len=32)
    model.adversarial.discriminator.channels = (8, 8, 16, 16)
    torch.manual_seed(0)
    torch.save({'meta': {}, 'state_dict': MODELS.build(model).state_dict()}, path)


def _options(data_root: str, pretrained: str) -> list:
    """--cfg-options: the phantom data at 32 px (Resize 37), one epoch of one batch of 8
    (half of the 17 training images: the 50 % label fraction)."""
    opts = [f'model.pretrained={pretrained}', 'train_cfg.max_epochs=1',
            'train_dataloader.batch_size=8', 'train_dataloader.dataset.fraction=0.5',
            'default_hooks.logger.interval=1', 'default_hooks.checkpoint.save_last=False',
            'default_hooks.checkpoint.interval=-1',  # the best checkpoint only
            'train_dataloader.dataset.dataset.dataset.pipeline.1.size=32']
    for split in ('train', 'val', 'test'):
        opts.append(f'{split}_dataloader.num_workers=0')
    for split in ('val', 'test'):
        opts += [f'{split}_dataloader.dataset.dataset.pipeline.1.size=37',
                 f'{split}_dataloader.dataset.dataset.pipeline.2.size=32']
    roots = ('train_dataloader.dataset.dataset.dataset', 'val_dataloader.dataset.dataset',
             'test_dataloader.dataset.dataset')
    return opts + [f'{key}.data_root={data_root}' for key in roots]


def test_trials_from_a_dira_checkpoint_then_tools_test(tmp_path):
    data_root = str(tmp_path / 'demo')
    make_demo_dataset(data_root, num_train=16, num_val=8, size=96, seed=0)
    pretrained = str(tmp_path / 'dira.pth')
    _dira_checkpoint(pretrained)
    work_dir = str(tmp_path / 'trials')
    options = _options(data_root, pretrained)
    config = str(tmp_path / 'demo_local_vis.py')  # the demo config, local scalars only
    with open(config, 'w') as f:
        f.write(f'_base_ = [{CONFIG!r}]\n'
                "visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])\n")
    trials = load_tool('benchmarks', 'classification_trials')
    summary = trials.main([config, '--seeds', '0', '1', '--work-dir', work_dir,
                           '--cfg-options'] + options)

    assert [t['seed'] for t in summary['trials']] == [0, 1]
    for trial in summary['trials']:
        run_dir = osp.join(work_dir, f'seed_{trial["seed"]}')
        # the best checkpoint (by validation AUC) was saved and tested on ten crops
        assert osp.basename(trial['checkpoint']) == 'best_auc_epoch_1.pth'
        assert osp.isfile(trial['checkpoint'])
        assert 0 <= trial['test']['auc'] <= 100 and trial['best_val'] is not None
        assert set(trial['test']) >= {'auc', 'auc/Nodule', 'auc/Cardiomegaly',
                                      'auc/Effusion', 'loss'}
        # the validation metric reached the logs; the encoder came from the DiRA checkpoint
        records = read_scalars(run_dir)
        assert any('auc' in r and 'auc/Effusion' in r for r in records)
        log = open(glob.glob(osp.join(run_dir, '*', '*.log'))[0]).read()
        assert 'U-Net under "ssl.backbone."' in log and 'RESULT: OK' in log
    # the two trials differ (seeds): the heads start from different random draws and
    # train on different shuffles, so their saved weights differ; the table reports the
    # trials with mean ± std
    heads = [torch.load(t['checkpoint'], map_location='cpu', weights_only=True)['state_dict']
             ['head.weight'] for t in summary['trials']]
    assert heads[0].shape == heads[1].shape and not torch.equal(heads[0], heads[1])
    first, second = (t['test']['auc'] for t in summary['trials'])
    assert summary['mean'] == pytest.approx((first + second) / 2)
    assert '| mean ± std (2) |' in summary['table'] and '--seeds 0 1' in summary['table']
    assert json.load(open(osp.join(work_dir, 'trials.json')))['metric'] == 'auc'

    # tools/test.py evaluates the same checkpoint to the same test AUC
    test_tool = load_tool('test')
    best = summary['trials'][0]['checkpoint']
    metrics = test_tool.main([config, best, '--work-dir', str(tmp_path / 'test'),
                              '--cfg-options'] + [o for o in options if 'test_' in o])
    assert metrics['auc'] == pytest.approx(summary['trials'][0]['test']['auc'])
