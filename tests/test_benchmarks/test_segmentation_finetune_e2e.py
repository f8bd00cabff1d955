"""A real fine-tuning run through mmengine's Runner: phantom lungs, from a DiRA checkpoint."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from dira_mm.datasets import make_phantom_lung_dataset
from dira_mm.evaluation import DiceMetric
from dira_mm.models import DiRA
from helpers import read_scalars

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'benchmarks', 'segmentation',
                'resnet18-unet_finetune_1xb8-adam-10e_demo.py')
DECODER = (32, 16, 16, 8, 8)


def _tiny_dira_checkpoint(path):
    """``{'state_dict': ...}`` of a DiRA-MoCo model with a ResNet-18 U-Net (untrained)."""
    torch.manual_seed(0)
    model = DiRA(
        discriminative=dict(
            type='MoCo',
            backbone=dict(type='ResNetUNet', encoder_name='resnet18', decoder_channels=DECODER),
            neck=dict(type='MoCoV2Neck', in_channels=512, hid_channels=32, out_channels=8),
            head=dict(type='ContrastiveHead', temperature=0.2), queue_len=16, feat_dim=8),
        restorative=dict(type='RestorativeHead'),
        adversarial=dict(discriminator=dict(type='PatchDiscriminator', channels=(4, 8, 8, 8))))
    torch.save({'state_dict': model.state_dict()}, path)
    return model.state_dict()


def _config(data_root, work_dir, pretrained, epochs):
    cfg = Config.fromfile(DEMO, lazy_import=False)
    cfg.merge_from_dict({
        'model.pretrained': pretrained,
        'model.backbone.decoder_channels': DECODER,
        'train_cfg.max_epochs': epochs,
        'train_dataloader.num_workers': 0,
        'val_dataloader.num_workers': 0,
        'default_hooks.logger.interval': 1,
    })
    for key in ('train_dataloader', 'val_dataloader'):
        dataset = cfg[key].dataset
        dataset = dataset.get('dataset', dataset)  # through the label-fraction wrapper
        dataset.data_root = data_root
        for t in dataset.pipeline:
            if 'size' in t:
                t['size'] = 64
    cfg.test_dataloader = cfg.val_dataloader
    cfg.work_dir = work_dir
    cfg.visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')],
                          name='vis_seg_finetune_e2e')
    cfg.experiment_name = 'seg_finetune_e2e'
    return cfg


def _dice_of(model, dataloader_cfg):
    """Validation Dice of ``model`` as it is (the untrained value)."""
    metric = DiceMetric()
    model.eval()
    with torch.no_grad():
        for batch in Runner.build_dataloader(dataloader_cfg):
            metric.process(batch, [s.to_dict() for s in model.val_step(batch)])
    return metric.compute_metrics(metric.results)['dice']


@pytest.fixture
def one_thread():
    """One intra-op thread: small convolutions gain little from two, and lose much when
    other jobs share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_finetune_on_phantom_lungs_improves_dice_and_saves_the_best(tmp_path, one_thread):
    data = make_phantom_lung_dataset(str(tmp_path / 'lungs'), num_train=32, num_val=8,
                                     num_test=0, size=64, seed=0)
    ckpt = str(tmp_path / 'dira.pth')
    pre = _tiny_dira_checkpoint(ckpt)
    cfg = _config(data['out_dir'], str(tmp_path / 'work'), ckpt, epochs=4)
    runner = Runner.from_cfg(cfg)
    model = runner.model
    model.init_weights()
    assert model.pretrained_report['ok']
    untrained = _dice_of(model, cfg.val_dataloader)
    runner.train()
    # the encoder and decoder started from the checkpoint (same init again in train())
    assert model.pretrained_report['ok'] and len(model.pretrained_report['matched']) > 100
    dice = runner.message_hub.get_scalar('val/dice').current()
    assert dice > untrained + 10, (untrained, dice)
    log = open(glob.glob(str(tmp_path / 'work' / '*' / '*.log'))[0]).read()
    assert 'dice: ' in log and 'RESULT: OK' in log
    best = glob.glob(str(tmp_path / 'work' / 'best_dice_epoch_*.pth'))
    assert len(best) == 1
    # the best checkpoint is that of the epoch with the highest validation Dice (the first
    # such epoch: mmengine replaces the best only on a strictly greater value)
    val = read_scalars(str(tmp_path / 'work'), single=True)
    val = [(r['step'], r['dice']) for r in val if 'dice' in r]
    assert [step for step, _ in val] == [1, 2, 3, 4], val
    top = max(d for _, d in val)
    best_epoch = next(step for step, d in val if d == top)
    assert osp.basename(best[0]) == f'best_dice_epoch_{best_epoch}.pth', (best, val)
    # the saved encoder was fine-tuned away from the DiRA weights it started from
    state = torch.load(best[0], weights_only=True)['state_dict']
    tuned = state['backbone.encoder.conv1.weight']
    start = pre['ssl.backbone.encoder.conv1.weight']
    assert tuned.shape == start.shape and not torch.equal(tuned, start)
