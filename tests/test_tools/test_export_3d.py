"""3-D export (issue 9 §5): FlexibleUNet, MONAI ResNet and Models Genesis layouts,
each loaded into the target here (independently of the tool's own check) and compared."""
import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from monai.networks.nets import FlexibleUNet, resnet10
from monai.networks.nets.resnet import ResNetFeatures

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dira_mm.models.backbones import GenesisUNet3D, ResNetUNet3D  # noqa: E402
from dira_mm.utils.checkpoint import find_unsafe_globals  # noqa: E402
from dira_mm.utils.convert import WeightConversionError  # noqa: E402
from dira_mm.utils.convert_3d import (convert_checkpoint_3d, find_backbone_3d,  # noqa: E402
                                      genesis_layout)
from reference_unet3d import RefUNet3D  # noqa: E402

TOOL = ROOT / 'tools' / 'model_converters' / 'export_3d.py'


def _tool():
    spec = importlib.util.spec_from_file_location('export_3d_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _x(channels=1, size=32, seed=0):
    return torch.rand((2, channels, size, size, size),
                      generator=torch.Generator().manual_seed(seed))


def _perturb_bn(model):
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)


@pytest.fixture(scope='module')
def resnet_ckpt(tmp_path_factory):
    """A DiRA-like 3-D checkpoint: ResNetUNet3D(resnet10) under ssl.backbone. plus other
    parts (momentum encoder, neck, discriminator)."""
    torch.manual_seed(0)
    backbone = ResNetUNet3D('resnet10')
    _perturb_bn(backbone)
    sd = backbone.state_dict()
    state = {f'ssl.backbone.{k}': v for k, v in sd.items()}
    state.update({f'ssl.momentum_encoder.module.{k}': v.clone() for k, v in sd.items()
                  if k.startswith('encoder.')})
    state['ssl.neck.mlp.0.weight'] = torch.zeros(8, 512)
    state['discriminator.model.0.weight'] = torch.zeros(8, 1, 4, 4, 4)
    path = tmp_path_factory.mktemp('r3d') / 'dira3d.pth'
    torch.save({'state_dict': state, 'meta': {'epoch': 1}}, path)
    return path, backbone.eval()


def test_flexible_unet_export(resnet_ckpt, tmp_path, capsys):
    src, backbone = resnet_ckpt
    dst = tmp_path / 'unet3d.pth'
    assert _tool().main([str(src), str(dst), '--format', 'flexible_unet']) == 0
    out = capsys.readouterr().out
    assert "under 'ssl.backbone.'" in out and 'RESULT: OK (outputs equal)' in out
    assert find_unsafe_globals(dst) == []
    state = torch.load(dst, weights_only=True)
    monai = FlexibleUNet(1, 1, 'resnet10', spatial_dims=3)
    monai.load_state_dict(state, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(torch.sigmoid(monai.eval()(_x())), backbone(_x()),
                                   rtol=0, atol=1e-6)


def test_monai_resnet_export(resnet_ckpt, tmp_path):
    src, backbone = resnet_ckpt
    dst = tmp_path / 'resnet10_3d.pth'
    info = convert_checkpoint_3d(str(src), str(dst), 'monai_resnet')
    assert info['report']['allowed_missing'] == ['fc.weight', 'fc.bias']
    state = torch.load(dst, weights_only=True)
    net = resnet10(spatial_dims=3, n_input_channels=1, conv1_t_stride=2,
                   shortcut_type='B', bias_downsample=False)
    result = net.load_state_dict(state, strict=False)
    assert sorted(result.missing_keys) == ['fc.bias', 'fc.weight']
    assert result.unexpected_keys == []
    with torch.no_grad():
        got = ResNetFeatures.forward(net.eval(), _x(seed=1))
        want = backbone.forward_encoder(_x(seed=1))
    assert len(got) == 5 and all(torch.equal(a, b) for a, b in zip(got, want))


def test_genesis_export_loads_into_reference_layout(tmp_path, capsys):
    torch.manual_seed(0)
    backbone = GenesisUNet3D(base_channels=4, official_batchnorm=True)
    _perturb_bn(backbone)
    src, dst = tmp_path / 'genesis_dira.pth', tmp_path / 'Genesis_export.pt'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in backbone.state_dict().items()}},
               src)
    assert _tool().main([str(src), str(dst), '--format', 'genesis',
                         '--module-prefix']) == 0
    out = capsys.readouterr().out
    assert 'matched:        106' in out and 'official Models Genesis UNet3D layout' in out
    # nothing was run, so nothing is claimed about outputs; the activation is not in the file
    assert 'outputs equal' not in out and 'differ by' not in out
    assert 'RESULT: OK (key layout checked; outputs not compared)' in out
    assert 'Activation: not stored in the weights' in out
    ckpt = torch.load(dst, weights_only=True)
    assert set(ckpt) == {'state_dict'}
    keys = list(ckpt['state_dict'])
    assert len(keys) == 106 and all(k.startswith('module.down_tr64.') for k in keys[:14])
    ref = RefUNet3D(b=4)  # the official loaders: strip "module.", load
    ref.load_state_dict({k[len('module.'):]: v for k, v in ckpt['state_dict'].items()},
                        strict=True)
    with torch.no_grad():
        assert torch.equal(ref.eval()(_x(size=16)), backbone.eval()(_x(size=16)))
    # and back in as initialisation, with the report
    again = GenesisUNet3D(base_channels=4, pretrained=str(dst))
    assert len(again.pretrained_report['matched']) == 106


def test_genesis_layout_is_the_reference_and_act_is_only_stated(tmp_path, capsys):
    """The layout the export is checked against equals the independent test reference's
    state dict (keys and shapes); a tensor off that layout is refused; --act is echoed,
    and refused where the weights contradict it (PReLU has weights, ReLU / ELU none)."""
    ref = {k: tuple(v.shape) for k, v in RefUNet3D(b=4, n_class=2).state_dict().items()}
    assert dict(genesis_layout(1, 4, 2, prelu=False, with_decoder=True)) == ref
    torch.manual_seed(1)
    state = {f'backbone.{k}': v for k, v in GenesisUNet3D(base_channels=2).state_dict().items()}
    src, dst = tmp_path / 'g.pth', tmp_path / 'g.pt'
    torch.save({'state_dict': state}, src)
    tool = _tool()
    assert tool.main([str(src), str(dst), '--format', 'genesis', '--act', 'elu']) == 0
    assert 'Activation: elu as stated by --act' in capsys.readouterr().out
    assert tool.main([str(src), str(tmp_path / 'p.pt'), '--format', 'genesis',
                      '--act', 'prelu']) == 1
    assert 'no PReLU weights' in capsys.readouterr().err
    state['backbone.up_tr64.up_conv.bias'] = torch.zeros(3)  # official: 4 * b = 8
    torch.save({'state_dict': state}, src)
    with pytest.raises(WeightConversionError, match=r'up_tr64.up_conv.bias: got \(3,\)'):
        convert_checkpoint_3d(str(src), str(tmp_path / 'x.pt'), 'genesis')
    assert not (tmp_path / 'x.pt').exists() and not (tmp_path / 'p.pt').exists()


def test_export_refusals(resnet_ckpt, tmp_path, capsys):
    src, backbone = resnet_ckpt
    tool = _tool()
    dst = tmp_path / 'never.pth'
    # NaN weights: refused, nothing written
    state = {f'backbone.{k}': v.clone() for k, v in backbone.state_dict().items()}
    state['backbone.encoder.layer2.0.conv1.weight'][0, 0, 0, 0, 0] = float('nan')
    bad = tmp_path / 'nan.pth'
    torch.save({'state_dict': state}, bad)
    assert tool.main([str(bad), str(dst), '--format', 'flexible_unet']) == 1
    err = capsys.readouterr().err
    assert 'non-finite' in err and 'layer2.0.conv1.weight' in err and not dst.exists()
    # a format of the other backbone kind
    with pytest.raises(WeightConversionError, match='exports to'):
        convert_checkpoint_3d(str(src), str(dst), 'genesis')
    # a 2-D checkpoint points to the 2-D tool
    two_d = {'state_dict': {'ssl.backbone.encoder.conv1.weight': torch.zeros(4, 3, 7, 7)}}
    with pytest.raises(WeightConversionError, match='extract_unet.py'):
        find_backbone_3d(two_d)
    # encoder-only backbone: no FlexibleUNet, but the encoder exports
    enc = {f'backbone.{k}': v for k, v in backbone.state_dict().items()
           if k.startswith('encoder.')}
    enc_path = tmp_path / 'enc.pth'
    torch.save({'state_dict': enc}, enc_path)
    with pytest.raises(WeightConversionError, match='monai_resnet'):
        convert_checkpoint_3d(str(enc_path), str(dst), 'flexible_unet')
    assert convert_checkpoint_3d(str(enc_path), str(dst), 'monai_resnet')['num_keys'] == 72


def test_flexible_unet_export_reads_decoder_options(tmp_path):
    """Decoder widths, output channels and the upsampling mode are read off the weights."""
    torch.manual_seed(2)
    backbone = ResNetUNet3D('resnet10', out_channels=2, decoder_channels=(32, 16, 8, 8, 4),
                            upsample='deconv', activation=None).eval()
    src, dst = tmp_path / 'plain.pth', tmp_path / 'flex.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in backbone.state_dict().items()}},
               src)
    info = convert_checkpoint_3d(str(src), str(dst), 'flexible_unet')
    assert "upsample='deconv'" in info['report_text']
    monai = FlexibleUNet(1, 2, 'resnet10', spatial_dims=3, decoder_channels=(32, 16, 8, 8, 4),
                         upsample='deconv')
    monai.load_state_dict(torch.load(dst, weights_only=True), strict=True)
    with torch.no_grad():
        assert torch.equal(monai.eval()(_x(seed=4)), backbone(_x(seed=4)))
