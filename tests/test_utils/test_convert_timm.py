"""Export round trips: a DiRA pre-training checkpoint -> smp / torchvision / timm models with
the same outputs, timm key check and its errors."""
import sys
from pathlib import Path

import pytest
import segmentation_models_pytorch as smp
import timm
import torch
import torch.nn.functional as F
import torchvision
from mmengine.config import Config

from dira_mm.registry import MODELS
from dira_mm.utils.convert import WeightConversionError, convert_checkpoint
from helpers import load_tool

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / 'configs' / 'dira' / 'dira_mocov2_demo.py'
DECODER = (32, 16, 16, 8, 8)


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    """A DiRA-MoCo-v2 ResNet-18 U-Net (demo config, small widths) saved as a checkpoint."""
    cfg = Config.fromfile(str(DEMO), lazy_import=False)
    cfg.model.discriminative.backbone.decoder_channels = DECODER
    cfg.model.discriminative.neck.update(hid_channels=32, out_channels=16)
    cfg.model.discriminative.update(feat_dim=16, queue_len=32)
    cfg.model.adversarial.discriminator.channels = (8, 8, 16, 16)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    with torch.no_grad():  # BN statistics that matter: eval outputs depend on them
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp('ckpt') / 'dira_epoch_1.pth'
    torch.save({'meta': {'epoch': 1}, 'state_dict': model.state_dict()}, path)
    return path, model.ssl.backbone.eval()


def _input():
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def test_timm_export_loads_strictly_with_the_same_features(pretrained, tmp_path):
    src, backbone = pretrained
    dst = tmp_path / 'resnet18_timm.pth'
    info = convert_checkpoint(str(src), str(dst), fmt='timm', verify_arch='resnet18')
    report = info['report']
    assert info['prefix'] == 'ssl.backbone.' and report['ok']
    assert len(report['matched']) == 120 and not report['missing'] and not report['unexpected']
    assert "timm.create_model('resnet18', pretrained=False, num_classes=0" in info['report_text']
    weights = torch.load(dst, weights_only=True)
    headless = timm.create_model('resnet18', pretrained=False, num_classes=0)
    headless.load_state_dict(weights, strict=True)
    with_head = timm.create_model('resnet18', pretrained=False)
    result = with_head.load_state_dict(weights, strict=False)
    assert sorted(result.missing_keys) == ['fc.bias', 'fc.weight']
    assert result.unexpected_keys == []
    x = _input()
    with torch.no_grad():
        ref = backbone.forward_encoder(x)[-1]
        assert torch.allclose(headless.eval().forward_features(x), ref, atol=1e-5)
        assert torch.allclose(headless(x), ref.mean((2, 3)), atol=1e-5)


def test_every_format_reproduces_the_pretrained_network(pretrained, tmp_path):
    src, backbone = pretrained
    x = _input()
    with torch.no_grad():
        ref_map = backbone.forward_encoder(x)[-1]
        ref_out = backbone(x)
    outs = {}
    for fmt in ('smp', 'torchvision', 'timm'):
        dst = tmp_path / f'{fmt}.pth'
        convert_checkpoint(str(src), str(dst), fmt=fmt, verify_arch='resnet18')
        outs[fmt] = torch.load(dst, weights_only=True)
    unet = smp.Unet('resnet18', encoder_weights=None, classes=1, decoder_channels=DECODER,
                    activation='sigmoid')
    unet.load_state_dict(outs['smp'], strict=True)
    tv = torchvision.models.resnet18()
    missing = tv.load_state_dict(outs['torchvision'], strict=False).missing_keys
    assert sorted(missing) == ['fc.bias', 'fc.weight']
    tv.fc = torch.nn.Identity()
    tm = timm.create_model('resnet18', pretrained=False, num_classes=0)
    tm.load_state_dict(outs['timm'], strict=True)
    assert outs['timm'].keys() == outs['torchvision'].keys()
    with torch.no_grad():
        assert torch.allclose(unet.eval()(x), ref_out, atol=1e-6)
        # smp's default head has no activation: its output equals ours after the sigmoid
        plain = smp.Unet('resnet18', encoder_weights=None, classes=1, decoder_channels=DECODER)
        plain.load_state_dict(outs['smp'], strict=True)
        logits = plain.eval()(x)
        assert torch.allclose(logits.sigmoid(), ref_out, atol=1e-6)
        assert not torch.allclose(logits, ref_out, atol=1e-2)
        pooled = F.adaptive_avg_pool2d(ref_map, 1).flatten(1)
        assert torch.allclose(tv.eval()(x), pooled, atol=1e-5)
        assert torch.allclose(tm.eval()(x), pooled, atol=1e-5)


def test_timm_mismatches_are_errors(pretrained, tmp_path):
    src, _ = pretrained
    dst = tmp_path / 'x.pth'
    with pytest.raises(WeightConversionError, match='shape mismatch'):
        convert_checkpoint(str(src), str(dst), fmt='timm', verify_arch='resnet50')
    # a deep-stem variant has other stem keys: missing and unexpected, not silently partial
    with pytest.raises(WeightConversionError) as err:
        convert_checkpoint(str(src), str(dst), fmt='timm', verify_arch='resnet18d')
    assert 'conv1.0.weight' in str(err.value) and 'RESULT: ERROR' in str(err.value)
    with pytest.raises(WeightConversionError, match='timm has no model'):
        convert_checkpoint(str(src), str(dst), fmt='timm', verify_arch='no_such_net')
    with pytest.raises(WeightConversionError, match='--drop-head'):
        convert_checkpoint(str(src), str(dst), fmt='timm', drop_head=True)
    assert not dst.exists()


def test_timm_input_channels_follow_the_weights(tmp_path):
    torch.manual_seed(0)
    unet = smp.Unet('resnet18', encoder_weights=None, in_channels=1, classes=1)
    src, dst = tmp_path / 'gray.pth', tmp_path / 'gray_timm.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in unet.state_dict().items()}}, src)
    info = convert_checkpoint(str(src), str(dst), fmt='timm', verify_arch='resnet18')
    assert 'in_chans=1' in info['report_text'] and info['report']['ok']


def test_cli_timm_format(pretrained, tmp_path, monkeypatch, capsys):
    src, _ = pretrained
    tool = load_tool('model_converters', 'extract_unet')
    out = tmp_path / 'cli_timm.pth'
    monkeypatch.setattr(sys, 'argv', ['extract_unet.py', str(src), str(out), '--format',
                                      'timm', '--verify-arch', 'resnet18'])
    assert tool.main() == 0
    text = capsys.readouterr().out
    assert 'format timm' in text and 'matched:        120' in text and 'RESULT: OK' in text
    assert torch.serialization.get_unsafe_globals_in_checkpoint(out) == []
