"""MultiLabelClassifier: pretrained loading (report, strictness), linear probe vs fine-tune,
masked BCE, ten-crop prediction, data preprocessor."""
import copy

import pytest
import segmentation_models_pytorch as smp
import torch
import torchvision
from mmengine.optim import OptimWrapper

from dira_mm.models import ClsDataPreprocessor, MaskedBCEWithLogitsLoss, MultiLabelClassifier
from dira_mm.structures import DiRADataSample
from dira_mm.utils.convert import WeightConversionError
from helpers import dira_like_checkpoint

R18 = dict(type='ResNetUNet', encoder_name='resnet18', with_decoder=False)


def _classifier(**kwargs) -> MultiLabelClassifier:
    torch.manual_seed(0)
    return MultiLabelClassifier(num_classes=3, backbone=dict(R18), **kwargs)


def _dira_checkpoint(path, drop=None, arch='resnet18'):
    """A DiRA-like checkpoint: a U-Net under ``ssl.backbone.`` plus the other parts."""
    return dira_like_checkpoint(path, arch=arch, drop=drop, seed=1)


def _batch(n=4, size=32, crops=None, labels=None):
    shape = (n, 1, size, size) if crops is None else (n, crops, 1, size, size)
    inputs = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator()
                           .manual_seed(n))
    if labels is None:
        labels = torch.tensor([[1., 0., 1.], [0., 1., -1.], [0., 0., 0.], [1., 1., 1.]])[:n]
    samples = [DiRADataSample(gt_label=label) for label in labels]
    return dict(inputs=inputs, data_samples=samples)


def test_dira_checkpoint_loads_with_a_key_match_report(tmp_path):
    path = tmp_path / 'dira.pth'
    unet = _dira_checkpoint(path)
    model = _classifier(pretrained=str(path))
    model.init_weights()  # what the Runner calls before training
    report = model.pretrained_report
    encoder_keys = [k for k in unet if k.startswith('encoder.')]
    assert report['ok'] and len(report['matched']) == len(encoder_keys)
    assert report['allowed_missing'] == ['head.weight', 'head.bias']
    assert report['unused'] and all(k.startswith(('decoder.', 'segmentation_head.'))
                                    for k in report['unused'])
    assert 'RESULT: OK' in report['text'] and 'U-Net under "ssl.backbone."' in report['text']
    state = model.state_dict()
    assert all(torch.equal(state['backbone.' + k], unet[k]) for k in encoder_keys)


def test_smp_and_torchvision_state_dicts_load(tmp_path):
    torch.manual_seed(2)
    resnet = torchvision.models.resnet18()
    torch.save(resnet.state_dict(), tmp_path / 'tv.pth')
    report = _classifier().load_pretrained(str(tmp_path / 'tv.pth'))
    assert report['ok'] and report['unused'] == ['encoder.fc.weight', 'encoder.fc.bias']
    assert 'torchvision' in report['source']
    encoder = {k: v for k, v in smp.Unet('resnet18', encoder_weights=None).state_dict().items()
               if k.startswith('encoder.')}
    torch.save({'state_dict': {'module.' + k: v for k, v in encoder.items()}},
               tmp_path / 'smp.pth')
    model = _classifier()
    assert model.load_pretrained(str(tmp_path / 'smp.pth'))['ok']
    assert torch.equal(model.backbone.encoder.layer4[1].bn2.running_var,
                       encoder['encoder.layer4.1.bn2.running_var'])


def test_mismatched_checkpoints_raise_with_the_report(tmp_path):
    missing = 'encoder.layer3.0.conv1.weight'
    _dira_checkpoint(tmp_path / 'missing.pth', drop=missing)
    model = _classifier()
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(WeightConversionError) as err:
        model.load_pretrained(str(tmp_path / 'missing.pth'))
    assert 'missing:        1' in str(err.value) and 'backbone.' + missing in str(err.value)
    assert 'RESULT: ERROR' in str(err.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    _dira_checkpoint(tmp_path / 'r34.pth', arch='resnet34')  # extra blocks: unexpected keys
    with pytest.raises(WeightConversionError, match='unexpected: +[1-9]'):
        _classifier().load_pretrained(str(tmp_path / 'r34.pth'))
    _dira_checkpoint(tmp_path / 'r50.pth', arch='resnet50')  # bottlenecks: other shapes
    with pytest.raises(WeightConversionError, match='shape mismatch: [1-9]'):
        _classifier().load_pretrained(str(tmp_path / 'r50.pth'))
    torch.save({'state_dict': {'generator.w': torch.zeros(1)}}, tmp_path / 'other.pth')
    with pytest.raises(WeightConversionError, match='Unknown checkpoint layout'):
        _classifier().load_pretrained(str(tmp_path / 'other.pth'))
    with pytest.raises(FileNotFoundError, match='model.pretrained'):
        _classifier(pretrained=str(tmp_path / 'absent.pth')).init_weights()


def _train_step(model):
    optim = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-2))
    model.train()
    return model.train_step(_batch(), optim)


def test_linear_probe_keeps_the_encoder_while_fine_tuning_changes_it():
    probe = _classifier(linear_probe=True)
    backbone_before = copy.deepcopy(probe.backbone.state_dict())  # BN statistics included
    head_before = probe.head.weight.detach().clone()
    losses = _train_step(probe)
    assert torch.isfinite(losses['loss'])
    assert not probe.backbone.training and probe.head.training
    assert all(torch.equal(backbone_before[k], v) for k, v in probe.backbone.state_dict().items())
    assert not torch.equal(head_before, probe.head.weight)
    assert not any(p.requires_grad for p in probe.backbone.parameters())

    finetune = _classifier()
    before = copy.deepcopy(finetune.backbone.state_dict())
    _train_step(finetune)
    after = finetune.backbone.state_dict()
    assert not torch.equal(before['encoder.conv1.weight'], after['encoder.conv1.weight'])
    assert not torch.equal(before['encoder.bn1.running_mean'], after['encoder.bn1.running_mean'])


def test_frozen_stages_freeze_the_stem_and_first_layers():
    model = _classifier(frozen_stages=2)
    model.train()
    assert not model.backbone.encoder.bn1.training and not model.backbone.encoder.layer2.training
    assert model.backbone.encoder.layer3.training
    assert not any(p.requires_grad for p in model.backbone.encoder.layer2.parameters())
    assert all(p.requires_grad for p in model.backbone.encoder.layer3.parameters())
    with pytest.raises(ValueError, match='frozen_stages=5'):
        _classifier(frozen_stages=5)


def test_loss_ignores_labels_of_minus_one():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.3, 0.0, -2.0]], requires_grad=True)
    labels = torch.tensor([[1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
    loss = MaskedBCEWithLogitsLoss()(logits, labels)
    keep = labels >= 0
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[keep], labels[keep])
    assert torch.allclose(loss, expected)
    loss.backward()
    assert logits.grad[0, 2] == 0 and logits.grad[1, 0] == 0
    nothing = MaskedBCEWithLogitsLoss()(logits, torch.full((2, 3), -1.0))
    assert nothing.item() == 0 and nothing.requires_grad
    model = _classifier()
    data = model.data_preprocessor(_batch(labels=torch.zeros(4, 2)))
    with pytest.raises(ValueError, match='num_classes is 3'):
        model(**data, mode='loss')


def test_ten_crop_prediction_averages_the_sigmoid_over_crops():
    model = _classifier().eval()
    data = model.data_preprocessor(_batch(n=2, crops=10))
    assert data['inputs'].shape == (2, 10, 3, 32, 32)
    with torch.no_grad():
        samples = model(**data, mode='predict')
        per_crop = torch.stack([model(data['inputs'][i], mode='tensor').sigmoid()
                                for i in range(2)])
        as_list = model(list(data['inputs'].unbind(1)), mode='tensor')
    for i, sample in enumerate(samples):
        assert torch.allclose(sample.pred_score, per_crop[i].mean(0), atol=1e-6)
    assert as_list.shape == (2, 10, 3)
    # the list of crops gives the same logits: their sigmoid averaged over the crops is the
    # predicted score
    for i, sample in enumerate(samples):
        assert torch.allclose(as_list[i].sigmoid().mean(0), sample.pred_score, atol=1e-6)
    with pytest.raises(ValueError, match='multi-crop inputs'):
        model(**data, mode='loss')


def test_preprocessor_repeats_gray_and_normalises_like_imagenet():
    pre = ClsDataPreprocessor()
    img = torch.tensor([[[[0, 255], [51, 102]]]], dtype=torch.uint8)
    out = pre(dict(inputs=img, data_samples=None))['inputs']
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(out, (img.float() / 255 - mean) / std)
    # hand values: 0 -> (0 - 0.485) / 0.229, 255 -> (1 - 0.485) / 0.229 (red); 51 -> 0.2,
    # 102 -> 0.4 on [0, 1] before (x - 0.406) / 0.225 (blue)
    assert out[0, 0, 0, 0].item() == pytest.approx(-2.1179039, abs=1e-5)
    assert out[0, 0, 0, 1].item() == pytest.approx(2.2489083, abs=1e-5)
    assert out[0, 2, 1, 0].item() == pytest.approx((0.2 - 0.406) / 0.225, abs=1e-5)
    assert out[0, 2, 1, 1].item() == pytest.approx(-0.0266667, abs=1e-5)
    raw = ClsDataPreprocessor(mean=None, std=None)(dict(inputs=img))['inputs']
    # no normalisation: the gray values on [0, 1], repeated to the 3 channels
    assert raw.shape == (1, 3, 2, 2)
    assert torch.allclose(raw, torch.tensor([[0.0, 1.0], [0.2, 0.4]]).expand(1, 3, 2, 2))
    with pytest.raises(ValueError, match='`mean` has 1 values'):
        ClsDataPreprocessor(mean=[0.5])
