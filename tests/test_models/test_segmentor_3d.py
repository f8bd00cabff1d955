"""3-D downstream models by value: sliding-window inference (MONAI) against a whole-volume pass
and against toy predictors, Dice per class over volumes by hand, loading 3-D pre-training
checkpoints (DiRA, plain, Genesis / TransVW layouts) with the key-match report and refusing 2-D
ones, and the 3-D classifier's logits and loss."""
import math
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from mmengine.registry import DefaultScope

from dira_mm.evaluation.metrics import DiceMetric
from dira_mm.models.segmentors.sliding_window import check_test_cfg, sliding_window_logits
from dira_mm.registry import MODELS
from dira_mm.structures import DiRADataSample
from dira_mm.utils.convert import WeightConversionError

PRE3D = dict(type='SegDataPreprocessor', num_channels=1, spatial_dims=3)


def _build(cfg):
    with DefaultScope.overwrite_default_scope('dira_mm'):
        return MODELS.build(cfg)


def _genesis_segmentor(**kwargs):
    return _build(dict(type='UNetSegmentor',
                       backbone=dict(type='GenesisUNet3D', base_channels=2),
                       data_preprocessor=PRE3D, **kwargs))


# ----------------------------------------------------------------------- sliding window
def test_slide_with_roi_equal_to_volume_is_the_whole_forward():
    torch.manual_seed(0)
    model = _genesis_segmentor(test_cfg=dict(mode='slide', roi_size=(16, 16, 8),
                                             overlap=0.5, sw_batch_size=2)).eval()
    x = torch.rand(2, 1, 16, 16, 8)
    with torch.no_grad():
        whole = model.extract_logits(x)
        samples = model(x, mode='predict')
    for sample, logits in zip(samples, whole):
        torch.testing.assert_close(sample.pred_prob, logits.sigmoid(), rtol=0, atol=1e-6)
        assert torch.equal(sample.pred_mask, (logits.sigmoid() > 0.5).to(torch.uint8))


@pytest.mark.parametrize('blend', ['gaussian', 'constant'])
def test_overlapping_windows_blend_to_the_predictor_values(blend):
    """A constant predictor gives that constant everywhere, and an identity predictor gives
    the input back: the blending weights are normalised, windows overlap by half, the last
    ones are moved inside, and a volume smaller than a window on one axis is padded."""
    cfg = check_test_cfg(dict(mode='slide', roi_size=(8, 8, 8), overlap=0.5, sw_batch_size=3,
                              blend_mode=blend), _genesis_segmentor().backbone, 'test')
    x = torch.rand(2, 1, 20, 13, 6)
    calls = []

    def constant(w):
        calls.append(tuple(w.shape))
        return torch.full((w.shape[0], 2, *w.shape[2:]), 3.0)

    out = sliding_window_logits(constant, x, cfg)
    assert out.shape == (2, 2, 20, 13, 6)
    torch.testing.assert_close(out, torch.full_like(out, 3.0))
    # windows every 4 voxels: X 0,4,8,12 (4), Y 0,4 + 5 moved inside (3), Z padded to 8 (1)
    assert sum(c[0] for c in calls) == 2 * 4 * 3 * 1 and all(c[2:] == (8, 8, 8) for c in calls)
    torch.testing.assert_close(sliding_window_logits(lambda w: w * 1.0, x, cfg), x,
                               rtol=0, atol=1e-5)


def test_test_cfg_errors_name_the_key():
    backbone = _genesis_segmentor().backbone  # input_multiple 8
    with pytest.raises(ValueError, match=r'test_cfg.roi_size=\(12, 16, 8\) must be positive '
                       'multiples'):
        check_test_cfg(dict(mode='slide', roi_size=(12, 16, 8)), backbone, 'S')
    with pytest.raises(ValueError, match='roi_size must give 3 window sizes'):
        check_test_cfg(dict(mode='slide', roi_size=(16, 16)), backbone, 'S')
    with pytest.raises(ValueError, match='overlap must be in'):
        check_test_cfg(dict(mode='slide', roi_size=(8, 8, 8), overlap=1.0), backbone, 'S')
    with pytest.raises(ValueError, match=r"unknown keys \['stride'\]"):
        check_test_cfg(dict(mode='slide', roi_size=(8, 8, 8), stride=4), backbone, 'S')
    with pytest.raises(ValueError, match="mode='whole' takes no options"):
        check_test_cfg(dict(roi_size=(8, 8, 8)), backbone, 'S')
    with pytest.raises(ValueError, match='test_cfg.mode must be one of'):
        _genesis_segmentor(test_cfg=dict(mode='sliding'))
    assert check_test_cfg(None, backbone, 'S') == dict(mode='whole')


def test_test_cfg_takes_monai_forms_and_names_bad_values():
    """An int ``roi_size`` (every axis), a per-axis ``sigma_scale`` and a ``padding_mode``
    reach MONAI as given (same values as calling it directly); bad ones fail at build."""
    from monai.inferers import sliding_window_inference
    backbone = _genesis_segmentor().backbone  # input_multiple 8
    cfg = check_test_cfg(dict(mode='slide', roi_size=8, sw_batch_size=3,
                              sigma_scale=(0.125, 0.125, 0.5), padding_mode='replicate'),
                         backbone, 'S')
    assert cfg['roi_size'] == (8, 8, 8) and cfg['sigma_scale'] == (0.125, 0.125, 0.5)
    x = torch.rand(1, 1, 13, 10, 6, generator=torch.Generator().manual_seed(3))

    def window_mean(w):  # depends on the blending weights and on the padded values
        return w.mean(dim=(2, 3, 4), keepdim=True).expand_as(w) + w

    out = sliding_window_logits(window_mean, x, cfg)
    want = sliding_window_inference(x, (8, 8, 8), 3, window_mean, overlap=0.5,
                                    mode='gaussian', sigma_scale=(0.125, 0.125, 0.5),
                                    padding_mode='replicate')
    torch.testing.assert_close(out, want, rtol=0, atol=0)
    scalar = sliding_window_logits(window_mean, x, dict(cfg, sigma_scale=0.125))
    assert not torch.allclose(out, scalar)  # the per-axis values are used
    for key, value in (('sigma_scale', (0.1, 0.1)), ('sigma_scale', -0.1),
                       ('sigma_scale', 'x'), ('padding_mode', 'zeros'),
                       ('roi_size', '16'), ('roi_size', 12.0), ('sw_batch_size', 1.5),
                       ('overlap', (0.5, 0.5, 0.5))):
        with pytest.raises(ValueError, match=f'model.test_cfg.{key}'):
            check_test_cfg(dict(dict(mode='slide', roi_size=8), **{key: value}), backbone,
                           'S')
    with pytest.raises(ValueError, match=r'roi_size=\(12, 12, 12\) must be positive'):
        check_test_cfg(dict(mode='slide', roi_size=12), backbone, 'S')


def test_slide_with_official_batch_statistics_warns():
    """ContBatchNorm3d normalises each window batch by its own statistics: the sliding
    output changes with sw_batch_size, and building such a model says so."""
    import logging

    from mmengine.logging import MMLogger
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        model = _build(dict(type='UNetSegmentor', data_preprocessor=PRE3D,
                            backbone=dict(type='GenesisUNet3D', base_channels=2,
                                          official_batchnorm=True),
                            test_cfg=dict(mode='slide', roi_size=16, sw_batch_size=1)))
        _genesis_segmentor(test_cfg=dict(mode='slide', roi_size=8))  # standard BN: silent
    finally:
        logger.removeHandler(handler)
    messages = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(messages) == 1 and 'sw_batch_size' in messages[0], messages
    x = torch.rand(1, 1, 32, 16, 16, generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():  # 3 windows along the first axis, one at a time or together
        one = sliding_window_logits(model.extract_logits, x, model.test_cfg)
        three = sliding_window_logits(model.extract_logits, x, dict(model.test_cfg,
                                                                    sw_batch_size=3))
    assert not torch.allclose(one, three)


# ----------------------------------------------------------------------- Dice per class
def test_dice_per_class_over_volumes_by_hand():
    metric = DiceMetric(threshold=0.5, classes=('nodule', 'vessel'))
    # volume 1: nodule 4 true voxels, 3 predicted of which 2 right; vessel empty / empty
    gt1 = torch.zeros(2, 4, 4, 2)
    gt1[0, 0, :4, 0] = 1
    prob1 = torch.zeros(2, 4, 4, 2)
    prob1[0, 0, :2, 0] = 0.9
    prob1[0, 3, 3, 1] = 0.7
    # volume 2: nodule 2 true, none predicted; vessel 2 true, 2 predicted, 1 right
    gt2 = torch.zeros(2, 4, 4, 2)
    gt2[0, 1, 1, :] = 1
    gt2[1, 2, 2, :] = 1
    prob2 = torch.zeros(2, 4, 4, 2)
    prob2[1, 2, 2, 0] = 0.8
    prob2[1, 0, 0, 0] = 0.6
    metric.process(None, [dict(pred_prob=prob1, gt_mask=gt1),
                          dict(pred_prob=prob2, gt_mask=gt2)])
    out = metric.compute_metrics(metric.results)
    # nodule: vol1 2*2/(3+4) = 4/7, vol2 0; pooled 2*2/(3+4+0+2) = 4/9
    assert out['dice/nodule'] == pytest.approx(100 * (4 / 7 + 0) / 2)
    assert out['dice_global/nodule'] == pytest.approx(100 * 4 / 9)
    # vessel: vol1 empty/empty -> 1 (empty_score), vol2 2*1/(2+2) = 1/2; pooled 2/4
    assert out['dice/vessel'] == pytest.approx(100 * (1 + 0.5) / 2)
    assert out['dice_global/vessel'] == pytest.approx(100 * 0.5)
    # all channels together per volume: vol1 2*2/(4+3), vol2 2*1/(4+2)
    assert out['dice'] == pytest.approx(100 * (4 / 7 + 1 / 3) / 2)
    assert out['num_empty'] == 0
    with pytest.raises(ValueError, match='one name per output channel'):
        DiceMetric(classes=('a', )).process(None, [dict(pred_prob=prob1, gt_mask=gt1)])


# ----------------------------------------------------------------------- loading
def _with_prefix(state, prefix):
    return OrderedDict((prefix + k, v.clone()) for k, v in state.items())


@pytest.mark.parametrize('layout', ['dira', 'plain', 'genesis', 'transvw'])
def test_genesis_segmentor_loads_3d_pretraining(layout):
    torch.manual_seed(1)
    source = _genesis_segmentor().backbone.state_dict()
    ckpt = {'dira': lambda s: {'state_dict': _with_prefix(s, 'ssl.backbone.')},
            'plain': lambda s: {'state_dict': _with_prefix(s, 'backbone.')},
            'genesis': lambda s: {'epoch': 3, 'state_dict': _with_prefix(s, 'module.')},
            'transvw': lambda s: _with_prefix(s, 'module.classficationNet.')}[layout](source)
    if layout == 'transvw':  # its classification head is not part of the U-Net
        ckpt['module.classficationNet.fc.weight'] = torch.zeros(8, 32)
    torch.manual_seed(2)
    model = _genesis_segmentor()
    head_before = model.backbone.out_tr.final_conv.weight.clone()
    report = model.load_pretrained(ckpt)
    assert len(report['matched']) == 104  # 106 UNet3D tensors minus the new head
    for key, value in model.backbone.state_dict().items():
        if key.startswith('out_tr.'):
            continue
        assert torch.equal(value, source[key]), key
    assert torch.equal(model.backbone.out_tr.final_conv.weight, head_before)


def test_resnet3d_segmentor_loads_and_fails_loudly():
    backbone = dict(type='ResNetUNet3D', backbone='resnet10', decoder_channels=(8, 8, 8, 4, 4))
    seg = dict(type='UNetSegmentor', backbone=backbone, data_preprocessor=PRE3D)
    torch.manual_seed(0)
    source = _build(seg).backbone.state_dict()
    model = _build(seg)
    report = model.load_pretrained({'state_dict': _with_prefix(source, 'ssl.backbone.')})
    head = [k for k in source if k.startswith('segmentation_head.')]
    assert len(report['matched']) == len(source) - len(head)
    assert torch.equal(model.backbone.encoder.conv1.weight, source['encoder.conv1.weight'])
    # an encoder tensor missing: nothing loads, the report names it
    broken = _with_prefix(source, 'backbone.')
    del broken['backbone.encoder.layer2.0.conv1.weight']
    fresh = _build(seg)
    before = fresh.backbone.encoder.conv1.weight.clone()
    with pytest.raises(WeightConversionError, match='encoder.layer2.0.conv1.weight'):
        fresh.load_pretrained({'state_dict': broken})
    assert torch.equal(fresh.backbone.encoder.conv1.weight, before)
    # a 2-D DiRA checkpoint: same torchvision key names, 2-D kernels -> one clear refusal
    two_d = _build(dict(type='UNetSegmentor', backbone=dict(type='ResNetUNet',
                                                            encoder_name='resnet18')))
    with pytest.raises(WeightConversionError,
                       match=r'is a 2-D checkpoint \("encoder.conv1.weight" is \(64, 3, 7, 7\)\)'
                       r'.*is 3-D.*inflate_from'):
        model.load_pretrained({'state_dict': _with_prefix(two_d.backbone.state_dict(),
                                                          'ssl.backbone.')})
    # and the reverse: a 3-D checkpoint for the 2-D segmentor
    r18 = _build(dict(seg, backbone=dict(backbone, backbone='resnet18'))).backbone.state_dict()
    with pytest.raises(WeightConversionError, match='is a 3-D checkpoint.*is 2-D'):
        two_d.load_pretrained({'state_dict': _with_prefix(r18, 'ssl.backbone.')})


# ----------------------------------------------------------------------- classifier
def test_classifier_3d_logits_loss_and_genesis_loading(tmp_path):
    torch.manual_seed(0)
    cfg = dict(type='MultiLabelClassifier', num_classes=1,
               backbone=dict(type='GenesisUNet3D', base_channels=2, with_decoder=False),
               data_preprocessor=dict(type='ClsDataPreprocessor', num_channels=1, mean=None,
                                      std=None, spatial_dims=3))
    model = _build(cfg).eval()
    x = torch.rand(3, 1, 16, 16, 8)
    with torch.no_grad():
        deepest = model.backbone.forward_encoder(x)[-1]  # 16 * base channels, stride 8
        by_hand = deepest.mean(dim=(2, 3, 4)) @ model.head.weight.T + model.head.bias
        logits = model(x)
    assert deepest.shape == (3, 32, 2, 2, 1)
    torch.testing.assert_close(logits, by_hand)
    labels = torch.tensor([[1.0], [0.0], [-1.0]])  # the third is ignored
    samples = [DiRADataSample(gt_label=lab) for lab in labels]
    with torch.no_grad():
        loss = model(x, samples, mode='loss')['loss']
    expected = F.binary_cross_entropy_with_logits(logits[:2], labels[:2])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert not math.isnan(loss.item())
    # a TransVW-layout checkpoint of the whole U-Net: the encoder loads, the rest is unused
    full = _build(dict(type='GenesisUNet3D', base_channels=2)).state_dict()
    ckpt = _with_prefix(full, 'module.classficationNet.')
    path = str(tmp_path / 'transvw.pt')
    torch.save(ckpt, path)
    report = model.load_pretrained(path)
    assert torch.equal(model.backbone.down_tr512.ops[1].conv1.weight,
                       full['down_tr512.ops.1.conv1.weight'])
    assert {k.split('.')[0] for k in report['unused']} == {'up_tr256', 'up_tr128', 'up_tr64',
                                                         'out_tr'}
