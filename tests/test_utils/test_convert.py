"""U-Net export: smp and torchvision key layouts, strict verification, safe loading."""
import subprocess
import sys
from pathlib import Path

import pytest
import segmentation_models_pytorch as smp
import torch
import torchvision

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dira_mm.utils.checkpoint import UnsafeCheckpointError, find_unsafe_globals  # noqa: E402
from dira_mm.utils.convert import (WeightConversionError, convert_checkpoint,  # noqa: E402
                                   extract_unet, find_unet_prefix)
from helpers import dira_like_checkpoint  # noqa: E402

TOOL = str(ROOT / 'tools' / 'model_converters' / 'extract_unet.py')
_PARTS = ('encoder.', 'decoder.', 'segmentation_head.')


def _dira_checkpoint(path, prefix='ssl.backbone.', drop=None) -> dict:
    """A DiRA-like checkpoint: U-Net under ``prefix`` plus neck/queue/discriminator."""
    return dira_like_checkpoint(path, prefix=prefix, drop=drop)


def test_smp_format_loads_strict(tmp_path):
    src, dst = tmp_path / 'dira.pth', tmp_path / 'unet.pth'
    unet = _dira_checkpoint(src)
    info = convert_checkpoint(str(src), str(dst), fmt='smp', verify_arch='resnet18')
    assert info['prefix'] == 'ssl.backbone.' and info['report']['ok']
    assert find_unsafe_globals(dst) == []
    converted = torch.load(dst, weights_only=True)
    assert type(converted) is dict and set(converted) == set(unet)
    model = smp.Unet('resnet18', encoder_weights=None, classes=1)
    model.load_state_dict(converted, strict=True)
    assert all(torch.equal(model.state_dict()[k], unet[k]) for k in unet)


def test_torchvision_format_misses_only_fc(tmp_path):
    src, dst = tmp_path / 'dira.pth', tmp_path / 'resnet18.pth'
    unet = _dira_checkpoint(src)
    info = convert_checkpoint(str(src), str(dst), fmt='torchvision', verify_arch='resnet18')
    assert info['report']['allowed_missing'] == ['fc.weight', 'fc.bias']
    model = torchvision.models.resnet18()
    result = model.load_state_dict(torch.load(dst, weights_only=True), strict=False)
    assert sorted(result.missing_keys) == ['fc.bias', 'fc.weight']
    assert result.unexpected_keys == []
    assert torch.equal(model.conv1.weight, unet['encoder.conv1.weight'])


def test_prefix_auto_and_explicit(tmp_path):
    src = tmp_path / 'moco.pth'
    _dira_checkpoint(src, prefix='backbone.')
    state = torch.load(src, weights_only=True)['state_dict']
    assert find_unet_prefix(state) == 'backbone.'
    unet, used = extract_unet({'state_dict': state}, prefix='backbone.')
    assert used == 'backbone.' and all(k.startswith(_PARTS) for k in unet)
    with pytest.raises(WeightConversionError, match='Key groups in the checkpoint'):
        find_unet_prefix(state, prefix='generator.')


def test_drop_head(tmp_path):
    src, dst = tmp_path / 'dira.pth', tmp_path / 'unet.pth'
    _dira_checkpoint(src)
    info = convert_checkpoint(str(src), str(dst), fmt='smp', verify_arch='resnet18',
                              drop_head=True)
    assert info['report']['allowed_missing'] == ['segmentation_head.0.weight',
                                                 'segmentation_head.0.bias']
    assert not any(k.startswith('segmentation_head.') for k in torch.load(dst))


def test_corrupted_keys_fail_with_report(tmp_path):
    src, dst = tmp_path / 'broken.pth', tmp_path / 'unet.pth'
    _dira_checkpoint(src, drop='decoder.blocks.0.conv1.0.weight')
    with pytest.raises(WeightConversionError) as err:
        convert_checkpoint(str(src), str(dst), fmt='smp', verify_arch='resnet18')
    assert 'decoder.blocks.0.conv1.0.weight' in str(err.value)
    assert 'RESULT: ERROR' in str(err.value)
    assert not dst.exists()
    # A wrong architecture is a shape mismatch, also an error.
    _dira_checkpoint(src)
    with pytest.raises(WeightConversionError, match='shape mismatch'):
        convert_checkpoint(str(src), str(dst), fmt='torchvision', verify_arch='resnet50')


def test_unsafe_input_is_refused(tmp_path):
    import numpy as np
    src = tmp_path / 'unsafe.pth'
    torch.save({'state_dict': {}, 'meta': {'x': np.arange(3)}}, src)
    with pytest.raises(UnsafeCheckpointError, match='numpy'):
        convert_checkpoint(str(src), str(tmp_path / 'o.pth'))


def test_cli_reports_and_exit_codes(tmp_path):
    good, broken = tmp_path / 'dira.pth', tmp_path / 'broken.pth'
    _dira_checkpoint(good)
    _dira_checkpoint(broken, drop='encoder.layer1.0.conv1.weight')
    ok = subprocess.run(
        [sys.executable, TOOL, str(good), str(tmp_path / 'tv.pth'), '--format',
         'torchvision', '--verify-arch', 'resnet18'],
        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert 'matched:        120' in ok.stdout and 'RESULT: OK' in ok.stdout
    bad = subprocess.run(
        [sys.executable, TOOL, str(broken), str(tmp_path / 'x.pth'), '--verify-arch',
         'resnet18'], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0
    assert 'encoder.layer1.0.conv1.weight' in bad.stderr and 'missing:' in bad.stderr
    assert not (tmp_path / 'x.pth').exists()


def test_non_finite_weights_are_never_exported(tmp_path):
    """A diverged run's checkpoint: refused with the first NaN tensor named, never OK."""
    src, dst = tmp_path / 'nan.pth', tmp_path / 'unet.pth'
    _dira_checkpoint(src)
    ckpt = torch.load(src, weights_only=True)
    ckpt['state_dict']['ssl.backbone.encoder.layer2.0.bn1.weight'][3] = float('nan')
    ckpt['state_dict']['ssl.backbone.decoder.blocks.0.conv1.0.weight'].fill_(float('inf'))
    torch.save(ckpt, src)
    with pytest.raises(WeightConversionError,
                       match=r'"encoder\.layer2\.0\.bn1\.weight" has 1 NaN and 0 Inf of 128 '
                             r'values \(2 of \d+ tensors'):
        convert_checkpoint(str(src), str(dst), fmt='smp')
    with pytest.raises(WeightConversionError, match='non-finite'):  # encoder only: 1 tensor
        convert_checkpoint(str(src), str(dst), fmt='torchvision', verify_arch='resnet18')
    assert not dst.exists()
    out = subprocess.run([sys.executable, TOOL, str(src), str(dst), '--verify-arch',
                          'resnet18'], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and 'RESULT: OK' not in out.stdout + out.stderr
    assert 'non-finite weights: "encoder.layer2.0.bn1.weight"' in out.stderr
    assert 'Nothing was written' in out.stderr and not dst.exists()


def test_wrong_verify_arch_names_the_architecture_of_the_checkpoint(tmp_path):
    from dira_mm.utils.convert import guess_resnet_arch

    src, dst = tmp_path / 'dira.pth', tmp_path / 'unet.pth'
    unet = _dira_checkpoint(src)
    assert guess_resnet_arch(unet) == 'resnet18'
    assert guess_resnet_arch(torchvision.models.resnet50().state_dict()) == 'resnet50'
    assert guess_resnet_arch(torchvision.models.resnext50_32x4d().state_dict()) == \
        'resnext50_32x4d'
    assert guess_resnet_arch({'fc.weight': torch.zeros(1)}) is None
    with pytest.raises(WeightConversionError) as err:
        convert_checkpoint(str(src), str(dst), fmt='smp', verify_arch='resnet50')
    text = str(err.value)
    assert text.startswith('The checkpoint looks like resnet18, not resnet50: its encoder has '
                           'basic blocks [2, 2, 2, 2], width 64 (resnet50: bottleneck blocks '
                           '[3, 4, 6, 3], width 64). Use --verify-arch resnet18')
    assert len(text.splitlines()) <= 9 and 'RESULT: ERROR' in text  # a few examples only
    out = subprocess.run([sys.executable, TOOL, str(src), str(dst), '--format', 'torchvision',
                          '--verify-arch', 'resnet34'], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 1 and not dst.exists()
    assert 'looks like resnet18, not resnet34' in out.stderr
    assert len(out.stderr.strip().splitlines()) <= 10, out.stderr


def test_protocol_prefixes_split_checkpoints_of_any_backbone():
    """The readers take a backbone's protocol prefixes; smp's are the default and give the
    same output as before."""
    from dira_mm.models.backbones import ResNetUNet
    from dira_mm.models.utils.pretrained import (encoder_weights_from_checkpoint,
                                                 unet_weights_from_checkpoint)
    from dira_mm.utils.convert import SMP_DECODER_PREFIXES, SMP_ENCODER_PREFIXES, to_format

    unet = ResNetUNet('resnet18', encoder_depth=3, decoder_channels=(16, 8, 4))
    state = {'ssl.backbone.' + k: v for k, v in unet.state_dict().items()}
    state['ssl.queue'] = torch.zeros(4, 8)
    default, used = extract_unet({'state_dict': state})
    explicit, _ = extract_unet({'state_dict': state}, 'auto', unet.encoder_prefixes)
    assert used == 'ssl.backbone.' and list(default) == list(explicit)
    assert (SMP_ENCODER_PREFIXES, SMP_DECODER_PREFIXES) == (unet.encoder_prefixes,
                                                            unet.decoder_prefixes)
    tv = to_format(default, 'torchvision')
    assert list(tv) == [k[len('encoder.'):] for k in default if k.startswith('encoder.')]
    assert all(torch.equal(tv[k[len('encoder.'):]], default[k]) for k in default
               if k.startswith('encoder.'))

    # a Genesis-like layout: several encoder prefixes, no "encoder." key at all
    genesis = {'backbone.down_tr64.w': torch.ones(1), 'backbone.down_tr128.w': torch.ones(2),
               'backbone.up_tr64.w': torch.ones(3), 'backbone.out_tr.w': torch.ones(4),
               'neck.w': torch.ones(5)}
    enc, dec = ('down_tr64.', 'down_tr128.'), ('up_tr64.', 'out_tr.')
    with pytest.raises(WeightConversionError, match='No U-Net'):
        find_unet_prefix(genesis)
    assert find_unet_prefix(genesis, encoder_prefixes=enc) == 'backbone.'
    weights, fmt, _ = unet_weights_from_checkpoint(genesis, encoder_prefixes=enc)
    assert sorted(weights) == ['down_tr128.w', 'down_tr64.w', 'out_tr.w', 'up_tr64.w']
    kept, unused, _ = encoder_weights_from_checkpoint(genesis, 'auto', enc, dec)
    assert sorted(kept) == ['down_tr128.w', 'down_tr64.w']
    assert sorted(unused) == ['out_tr.w', 'up_tr64.w']
