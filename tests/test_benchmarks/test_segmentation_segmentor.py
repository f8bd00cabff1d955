"""UNetSegmentor: loading a pre-training checkpoint (report, errors, tensors), modes, freezing."""
import os.path as osp

import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper

from dira_mm.models import DiRA, UNetSegmentor
from dira_mm.structures import SegDataSample
from dira_mm.utils.convert import WeightConversionError, extract_unet

DECODER = (32, 16, 16, 8, 8)
TINY_BACKBONE = dict(type='ResNetUNet', encoder_name='resnet18', decoder_channels=DECODER)


def tiny_dira(backbone=TINY_BACKBONE):
    torch.manual_seed(0)
    return DiRA(
        discriminative=dict(
            type='MoCo', backbone=backbone,
            neck=dict(type='MoCoV2Neck', in_channels=512, hid_channels=32, out_channels=8),
            head=dict(type='ContrastiveHead', temperature=0.2), queue_len=16, feat_dim=8),
        restorative=dict(type='RestorativeHead') if backbone.get('with_decoder', True) else None,
        adversarial=None)


@pytest.fixture(scope='module')
def dira_ckpt(tmp_path_factory):
    """A dira_mm DiRA checkpoint (``state_dict`` of a tiny model) and its state dict."""
    model = tiny_dira()
    # make the U-Net's weights distinguishable from any fresh initialisation (a small
    # shift: +0.5 on every weight made the frozen encoder's features Inf and the loss NaN)
    with torch.no_grad():
        for p in model.ssl.backbone.parameters():
            p.add_(0.001)
    path = str(tmp_path_factory.mktemp('ckpt') / 'dira.pth')
    state = model.state_dict()
    torch.save({'state_dict': state, 'meta': {'epoch': 1}}, path)
    return path, state


def segmentor(pretrained=None, **kw):
    backbone = dict(dict(encoder_name='resnet18', decoder_channels=kw.pop('decoder', DECODER)),
                    **kw.pop('backbone', {}))
    return UNetSegmentor(backbone=backbone, pretrained=pretrained, **kw)


def test_encoder_and_decoder_come_from_the_checkpoint_and_the_head_is_new(dira_ckpt, tmp_path):
    path, state = dira_ckpt
    log = tmp_path / 'report.log'
    MMLogger.get_instance('seg_report_test', log_file=str(log))
    model = segmentor(path, num_classes=2)
    model.init_weights()
    loaded = model.backbone.state_dict()
    enc_dec = [k for k in loaded if k.startswith(('encoder.', 'decoder.'))]
    assert len(enc_dec) == len(model.pretrained_report['matched']) > 100
    for key in enc_dec:
        assert torch.equal(loaded[key], state['ssl.backbone.' + key]), key
    assert loaded['segmentation_head.0.weight'].shape[0] == 2  # num_classes outputs
    assert state['ssl.backbone.segmentation_head.0.weight'].shape[0] == 1
    text = log.read_text()
    assert 'U-Net under "ssl.backbone."' in text and 'RESULT: OK' in text
    assert "not loaded: ['segmentation_head']" in text
    # one class: same shape as the restoration head, still not taken from it
    model = segmentor(path)
    model.init_weights()
    assert not torch.equal(model.backbone.segmentation_head[0].weight,
                           state['ssl.backbone.segmentation_head.0.weight'])


def test_encoder_only_and_bare_smp_state_dict(dira_ckpt, tmp_path):
    path, state = dira_ckpt
    model = segmentor(path, init='encoder')
    model.init_weights()
    sd = model.backbone.state_dict()
    assert torch.equal(sd['encoder.conv1.weight'], state['ssl.backbone.encoder.conv1.weight'])
    assert not torch.equal(sd['decoder.blocks.0.conv1.0.weight'],
                           state['ssl.backbone.decoder.blocks.0.conv1.0.weight'])
    assert 'segmentation_head.0.weight' in model.pretrained_report['allowed_missing']
    # an exported smp state dict (extract_unet.py --format smp, the official best_checkpoint)
    bare = str(tmp_path / 'unet.pth')
    torch.save(dict(extract_unet(torch.load(path, weights_only=True))[0]), bare)
    model = segmentor(bare)
    model.init_weights()
    assert torch.equal(model.backbone.state_dict()['decoder.blocks.4.conv2.0.weight'],
                       state['ssl.backbone.decoder.blocks.4.conv2.0.weight'])


def test_mismatched_checkpoints_raise_with_the_report(dira_ckpt, tmp_path):
    path, _ = dira_ckpt
    with pytest.raises(WeightConversionError, match=r'(?s)resnet34.*missing: +96.*RESULT: ERROR'):
        segmentor(path, backbone=dict(encoder_name='resnet34')).init_weights()
    with pytest.raises(WeightConversionError, match=r'(?s)shape mismatch: +\d+\n +decoder'):
        segmentor(path, decoder=(64, 16, 16, 8, 8)).init_weights()
    # a `di` checkpoint has no decoder: encoder_decoder refuses, encoder works
    di_path = str(tmp_path / 'di.pth')
    torch.save({'state_dict': tiny_dira(dict(TINY_BACKBONE, with_decoder=False)).state_dict()},
               di_path)
    with pytest.raises(WeightConversionError, match="no decoder.*init='encoder'"):
        segmentor(di_path).init_weights()
    segmentor(di_path, init='encoder').init_weights()
    # no U-Net at all, a missing file
    other = str(tmp_path / 'other.pth')
    torch.save({'state_dict': {'fc.weight': torch.zeros(2, 2)}}, other)
    with pytest.raises(WeightConversionError, match='other.pth.*No U-Net'):
        segmentor(other).init_weights()
    with pytest.raises(FileNotFoundError, match='model.pretrained'):
        segmentor(osp.join(str(tmp_path), 'nope.pth')).init_weights()


def test_ddp_prefixed_and_torchvision_checkpoints_load(dira_ckpt, tmp_path):
    """The classifier's layouts: a checkpoint saved from a DDP-wrapped model, a torchvision
    ResNet file (its ImageNet ``fc`` left out, reported)."""
    path, state = dira_ckpt
    ddp = str(tmp_path / 'ddp.pth')
    torch.save({'state_dict': {'module.' + k: v for k, v in state.items()}}, ddp)
    model = segmentor(ddp)
    model.init_weights()
    sd = model.backbone.state_dict()
    assert torch.equal(sd['decoder.blocks.4.conv2.0.weight'],
                       state['ssl.backbone.decoder.blocks.4.conv2.0.weight'])
    assert torch.equal(sd['encoder.layer4.1.bn2.running_var'],
                       state['ssl.backbone.encoder.layer4.1.bn2.running_var'])
    assert model.pretrained_report['ok'] and len(model.pretrained_report['matched']) > 100
    import torchvision
    torch.manual_seed(1)
    tv = torchvision.models.resnet18().state_dict()
    tv_path = str(tmp_path / 'resnet18_torchvision.pth')
    torch.save(tv, tv_path)
    model = segmentor(tv_path, init='encoder')
    model.init_weights()
    assert torch.equal(model.backbone.state_dict()['encoder.layer3.0.conv1.weight'],
                       tv['layer3.0.conv1.weight'])
    assert len(model.pretrained_report['matched']) == len(tv) - 2  # all but fc
    assert "'encoder.fc'" in model.pretrained_report['what']

def _batch(n=2, size=64):
    g = torch.Generator().manual_seed(0)
    inputs = torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=g)
    masks = [(torch.rand(1, size, size, generator=g) > 0.5).to(torch.uint8) for _ in range(n)]
    return dict(inputs=inputs, data_samples=[SegDataSample(gt_mask=m) for m in masks])


def test_modes_losses_and_preprocessing():
    model = segmentor(bce_weight=0.5, threshold=0.3)
    data = model.data_preprocessor(_batch(), True)
    assert data['inputs'].shape == (2, 3, 64, 64) and data['inputs'].max() <= 1
    assert torch.equal(data['inputs'][:, 0], data['inputs'][:, 2])
    logits = model(data['inputs'], mode='tensor')
    assert logits.shape == (2, 1, 64, 64)
    target = torch.stack([s.gt_mask for s in data['data_samples']])
    losses = model(**data, mode='loss')
    probs = logits.sigmoid()
    dice = 1 - (2 * (probs * target).sum() + 1) / (probs.sum() + target.sum() + 1)
    assert torch.allclose(losses['loss_dice'], dice, atol=1e-6)
    bce = torch.nn.functional.binary_cross_entropy(probs, target)
    assert torch.allclose(losses['loss_bce'], 0.5 * bce, atol=1e-5)
    preds = model(**data, mode='predict')
    assert len(preds) == 2 and preds[0].pred_prob.shape == (1, 64, 64)
    assert torch.equal(preds[1].pred_mask, (probs[1] > 0.3).to(torch.uint8))
    with pytest.raises(ValueError, match='multiple of 32'):
        model(torch.zeros(1, 3, 48, 40))
    with pytest.raises(ValueError, match='model.backbone.activation'):
        segmentor(backbone=dict(activation='sigmoid'))


def test_frozen_encoder_does_not_change(dira_ckpt):
    model = segmentor(dira_ckpt[0], freeze_encoder=True)
    model.init_weights()
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    wrapper = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-2))
    model.train()
    assert not model.backbone.encoder.training and model.backbone.decoder.training
    model.train_step(_batch(), wrapper)
    after = model.backbone.state_dict()
    # encoder weights and BatchNorm statistics are untouched; decoder and head are trained
    for key, value in before.items():
        if key.startswith('encoder.'):
            assert torch.equal(value, after[key]), key
    for key in ('decoder.blocks.0.conv1.0.weight', 'decoder.blocks.0.conv1.1.running_mean',
                'segmentation_head.0.weight'):
        assert not torch.equal(before[key], after[key]), key
