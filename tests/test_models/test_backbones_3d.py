"""3-D backbones (issue 9 §4): ResNetUNet3D (MONAI FlexibleUNet) and GenesisUNet3D.

Values, not only shapes: FlexibleUNet's outputs, a 2-D conv on the slice of a volume that
is constant along depth, an independent model of the official UNet3D layout
(``tests/reference_unet3d.py``) and the key-match reports of Genesis / TransVW style
checkpoints.
"""
import copy
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision
from monai.networks.nets import FlexibleUNet, resnet50
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dira_mm.models.backbones import (BaseEncoderDecoder, GenesisUNet3D,  # noqa: E402
                                      ResNetUNet3D)
from dira_mm.models.backbones.resnet_unet3d import inflate_kernel  # noqa: E402
from dira_mm.registry import MODELS  # noqa: E402
from dira_mm.utils.convert import WeightConversionError  # noqa: E402
from reference_unet3d import RefUNet3D  # noqa: E402


def _vol(shape, seed=0):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def _check_prefix_split(model: BaseEncoderDecoder):
    keys = list(model.state_dict())
    for key in keys:
        assert model.is_encoder_key(key) != model.is_decoder_key(key), key
    return [k for k in keys if model.is_encoder_key(k)]


# --------------------------------------------------------------------- ResNetUNet3D


@pytest.fixture(scope='module')
def resnet10_unet():
    torch.manual_seed(0)
    return ResNetUNet3D('resnet10', activation=None)


def test_resnet_unet3d_equals_flexible_unet(resnet10_unet):
    """Our state dict loads strictly into FlexibleUNet and gives the same logits; the
    sigmoid head is the sigmoid of them."""
    model = resnet10_unet.eval()
    monai = FlexibleUNet(1, 1, 'resnet10', spatial_dims=3).eval()
    monai.load_state_dict(model.state_dict(), strict=True)
    x = _vol((2, 1, 32, 32, 32))
    with torch.no_grad():
        ours, theirs = model(x), monai(x)
        feats = model.forward_encoder(x)
        restored = ResNetUNet3D('resnet10')
        restored.load_state_dict(model.state_dict())
        restored = restored.eval()(x)
    assert torch.equal(ours, theirs)
    torch.testing.assert_close(restored, torch.sigmoid(theirs), rtol=0, atol=1e-6)
    assert [tuple(f.shape) for f in feats] == [
        (2, 64, 16, 16, 16), (2, 64, 8, 8, 8), (2, 128, 4, 4, 4), (2, 256, 2, 2, 2),
        (2, 512, 1, 1, 1)]
    assert model.out_channels == [64, 64, 128, 256, 512]
    assert tuple(model.input_multiple) == (32, 32, 32) and model.spatial_dims == 3


def test_resnet_unet3d_protocol(resnet10_unet):
    model = resnet10_unet.eval()
    x = _vol((2, 1, 32, 32, 32), 1)
    with torch.no_grad():
        assert torch.equal(model(x), model.forward_decoder(model.forward_encoder(x)))
        assert all(torch.equal(a, b) for a, b in zip(model.forward_encoder(x),
                                                     model.encoder_module()(x)))
    enc_keys = _check_prefix_split(model)
    assert enc_keys and all(k.startswith('encoder.') for k in enc_keys)
    assert model.encoder_module() is model.encoder
    encoder_only = ResNetUNet3D('resnet10', with_decoder=False)
    assert list(encoder_only.state_dict()) == enc_keys
    with pytest.raises(RuntimeError, match='with_decoder=False'):
        encoder_only.forward_decoder([])
    with pytest.raises(ValueError, match='3-D backbone'):
        model.forward_encoder(torch.zeros(1, 1, 32, 32))
    built = MODELS.build(dict(type='ResNetUNet3D', backbone='resnet10', with_decoder=False))
    assert isinstance(built, ResNetUNet3D) and not built.with_decoder
    assert built.arch_name == 'resnet10 (3-D)'
    stages = built.encoder_stages()
    assert len(stages) == 5 and stages[0] == [built.encoder.conv1, built.encoder.bn1]
    staged = {id(p) for stage in stages for m in stage for p in m.parameters()}
    assert staged == {id(p) for p in built.encoder.parameters()}


def test_resnet50_unet3d_keys_are_torchvision_and_monai():
    """Default backbone (meta device: no weights computed): 67.67 M parameters, encoder
    46.16 M; encoder keys = torchvision resnet50's and MONAI resnet50(spatial_dims=3,
    bias_downsample=False)'s minus fc; MONAI's default bias_downsample=True has 4 more."""
    with torch.device('meta'):
        model = ResNetUNet3D()
        plain = resnet50(spatial_dims=3, n_input_channels=1, bias_downsample=False)
        default = resnet50(spatial_dims=3, n_input_channels=1)
        tv = torchvision.models.resnet50()
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == 67.67
    assert round(sum(p.numel() for p in model.encoder.parameters()) / 1e6, 2) == 46.16
    enc = {k[len('encoder.'):]: v.shape for k, v in model.state_dict().items()
           if k.startswith('encoder.')}
    assert set(plain.state_dict()) - set(enc) == {'fc.weight', 'fc.bias'}
    assert set(enc) <= set(plain.state_dict())
    assert all(plain.state_dict()[k].shape == s for k, s in enc.items())
    assert set(tv.state_dict()) - set(enc) == {'fc.weight', 'fc.bias'}
    assert set(enc) <= set(tv.state_dict())
    assert len(set(default.state_dict()) - set(enc)) == 6  # fc + 4 downsample biases
    assert enc['conv1.weight'] == (64, 1, 7, 7, 7)
    _check_prefix_split(model)


def test_inflated_conv_equals_2d_conv_on_slice():
    """A Z-constant volume through the inflated kernel = the 2-D conv on its slice at the
    depths whose receptive field lies inside the volume (stride 2, 7x7 like the stem)."""
    torch.manual_seed(0)
    w2 = torch.randn(5, 2, 7, 7)
    depth = 12
    w3 = inflate_kernel(w2, 7, axis=2)
    assert w3.shape == (5, 2, 7, 7, 7)
    torch.testing.assert_close(w3.sum(-1), w2)
    slice_ = _vol((1, 2, 20, 18), 3)
    vol = slice_.unsqueeze(-1).expand(-1, -1, -1, -1, depth).contiguous()
    out2 = F.conv2d(slice_, w2, stride=2, padding=3)
    out3 = F.conv3d(vol, w3, stride=2, padding=3)
    inner = [j for j in range(out3.shape[-1]) if 2 * j - 3 >= 0 and 2 * j + 3 <= depth - 1]
    assert inner == [2, 3, 4]
    for j in inner:
        torch.testing.assert_close(out3[..., j], out2, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out3[..., 0], out2, atol=1e-3)  # the end sees zero padding


def _resnet10_2d():
    torch.manual_seed(1)
    net = torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, [1, 1, 1, 1])
    for m in net.modules():  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


def test_inflate_from_dira_2d_checkpoint(tmp_path):
    """A dira_mm 2-D checkpoint (ssl.backbone.encoder.*, 3-channel stem, plus decoder and
    fc) inflates into the resnet10 3-D encoder: every encoder tensor loads, BN copied, the
    stem summed over its channels; the first stage then equals the 2-D one on a gray
    slice repeated on 3 channels, at interior depths."""
    net2d = _resnet10_2d()
    state = {f'ssl.backbone.encoder.{k}': v for k, v in net2d.state_dict().items()}
    state['ssl.backbone.decoder.blocks.0.conv1.0.weight'] = torch.zeros(4, 4, 3, 3)
    state['ssl.neck.mlp.0.weight'] = torch.zeros(2, 2)
    path = tmp_path / 'dira2d.pth'
    torch.save({'state_dict': state, 'meta': {'epoch': 3}}, path)
    model = ResNetUNet3D('resnet10', with_decoder=False, inflate_from=str(path)).eval()
    report = model.inflate_report
    assert report['ok'] and len(report['matched']) == len(model.encoder.state_dict()) == 72
    assert set(report['unused_2d']) == {'encoder.fc.weight', 'encoder.fc.bias',
                                        'decoder.blocks.0.conv1.0.weight'}
    assert any('stem summed' in n for n in report['notes'])
    sd3 = model.encoder.state_dict()
    sd2 = net2d.state_dict()
    assert torch.equal(sd3['layer2.0.bn1.running_var'], sd2['layer2.0.bn1.running_var'])
    torch.testing.assert_close(sd3['conv1.weight'],
                               sd2['conv1.weight'].sum(1, keepdim=True).unsqueeze(2 + 2)
                               .repeat(1, 1, 1, 1, 7) / 7)
    torch.testing.assert_close(sd3['layer3.0.conv2.weight'].sum(-1), sd2['layer3.0.conv2.weight'])
    gray = _vol((1, 1, 32, 32), 5)
    depth = 16
    vol = gray.unsqueeze(-1).expand(-1, -1, -1, -1, depth).contiguous()
    with torch.no_grad():
        f2 = net2d.relu(net2d.bn1(net2d.conv1(gray.repeat(1, 3, 1, 1))))
        f3 = model.forward_encoder(vol)[0]
    for j in (2, 3, 4, 5):  # output depths whose 7-deep window is inside the volume
        torch.testing.assert_close(f3[..., j], f2, rtol=1e-4, atol=1e-5)


def test_inflate_from_fails_loudly(tmp_path):
    net2d = _resnet10_2d()
    partial = {k: v for k, v in net2d.state_dict().items() if not k.startswith('layer4.')}
    with pytest.raises(WeightConversionError, match='missing'):
        ResNetUNet3D('resnet10', with_decoder=False, inflate_from=partial)
    # MONAI's resnet18 uses parameter-free shortcuts: torchvision's downsample convs
    with torch.device('meta'):
        tv18 = torchvision.models.resnet18().state_dict()
    with pytest.raises(WeightConversionError, match='unexpected'), torch.device('meta'):
        ResNetUNet3D('resnet18', with_decoder=False, inflate_from=tv18)
    three_d = {'encoder.' + k: v
               for k, v in ResNetUNet3D('resnet10', with_decoder=False).encoder
               .state_dict().items()}
    with pytest.raises(WeightConversionError, match='already 3-D'):
        ResNetUNet3D('resnet10', with_decoder=False, inflate_from=three_d)
    fresh = ResNetUNet3D('resnet10', with_decoder=False, in_channels=2)
    before = copy.deepcopy(fresh.state_dict())
    with pytest.raises(WeightConversionError, match='input channels'):
        fresh.inflate(net2d.state_dict())
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())


# --------------------------------------------------------------------- GenesisUNet3D


def test_genesis_default_layout_matches_official():
    """106 keys in the official order and shapes, 19.07 M parameters (meta device)."""
    with torch.device('meta'):
        ours, ref = GenesisUNet3D(), RefUNet3D()
    ours_sd, ref_sd = ours.state_dict(), ref.state_dict()
    assert list(ours_sd) == list(ref_sd) and len(ours_sd) == 106
    assert all(ours_sd[k].shape == ref_sd[k].shape for k in ref_sd)
    assert sum(p.numel() for p in ours.parameters()) == 19_073_665
    assert ours_sd['up_tr256.ops.0.conv1.weight'].shape == (256, 768, 3, 3, 3)
    enc = _check_prefix_split(ours)
    assert len(enc) == 4 * 14
    with torch.device('meta'):
        assert len(GenesisUNet3D(act='prelu').state_dict()) == 106 + 14


def test_genesis_equals_reference_and_batchnorm_modes():
    torch.manual_seed(0)
    ref = RefUNet3D(b=4)
    for m in ref.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    x = _vol((2, 1, 16, 16, 8), 2)
    official = GenesisUNet3D(base_channels=4, official_batchnorm=True)
    official.load_state_dict(ref.state_dict(), strict=True)
    fixed = GenesisUNet3D(base_channels=4)
    fixed.load_state_dict(ref.state_dict(), strict=True)
    with torch.no_grad():
        want = ref.eval()(x)
        assert torch.equal(official.eval()(x), want)  # eval keeps batch statistics
        assert torch.equal(fixed.train()(x), want)
        in_eval = fixed.eval()(x)
    assert not torch.allclose(in_eval, want, atol=1e-3)  # running statistics in eval
    assert want.min() > 0 and want.max() < 1
    feats = fixed.forward_encoder(x)
    assert [tuple(f.shape) for f in feats] == [(2, 8, 16, 16, 8), (2, 16, 8, 8, 4),
                                               (2, 32, 4, 4, 2), (2, 64, 2, 2, 1)]
    assert fixed.out_channels == [8, 16, 32, 64] and tuple(fixed.input_multiple) == (8,) * 3
    with torch.no_grad():
        assert torch.equal(fixed(x), fixed.forward_decoder(fixed.forward_encoder(x)))
    logits = GenesisUNet3D(base_channels=4, activation=None)
    logits.load_state_dict(ref.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(torch.sigmoid(logits.train()(x)), want)


def test_global_batchnorm_keeps_official_batch_statistics():
    """convert_global_batchnorm (global_bn=True) must not turn the official always-batch-
    statistics norms into running-statistics ones: outputs stay equal in train and eval;
    a standard BatchNorm3d is still converted."""
    from dira_mm.models.heads import TransVWClsHead
    from dira_mm.models.utils import GlobalBatchNorm, convert_global_batchnorm
    torch.manual_seed(0)
    model = convert_global_batchnorm(GenesisUNet3D(base_channels=2, official_batchnorm=True))
    head = convert_global_batchnorm(TransVWClsHead(8, 3, mid_channels=4,
                                                   official_batchnorm=True))
    x = _vol((2, 1, 16, 16, 8), 5)
    with torch.no_grad():
        want = model.train()(x)
        assert torch.equal(model.eval()(x), want)
        feat = _vol((2, 8, 2, 2, 2), 6)
        assert torch.equal(head.eval()(feat), head.train()(feat))
    assert not any(isinstance(m, GlobalBatchNorm) for m in (*model.modules(), head.bn))
    plain = convert_global_batchnorm(GenesisUNet3D(base_channels=2))
    assert type(plain.down_tr64.ops[0].bn1) is GlobalBatchNorm


def test_genesis_encoder_module_is_a_view():
    """encoder_module shares the weights (not in the state dict twice); a deep copy (a
    momentum encoder) is independent and keyed down_tr*."""
    model = GenesisUNet3D(base_channels=4)
    assert len(model.state_dict()) == 106
    enc = model.encoder_module()
    assert enc.down_tr64.ops[0].conv1.weight is model.down_tr64.ops[0].conv1.weight
    momentum = copy.deepcopy(enc)
    assert list(momentum.state_dict()) == _check_prefix_split(model)
    momentum.down_tr64.ops[0].conv1.weight.data.zero_()
    assert model.down_tr64.ops[0].conv1.weight.abs().sum() > 0
    twin = copy.deepcopy(model)
    assert twin.encoder_module().down_tr64 is twin.down_tr64
    assert not GenesisUNet3D(base_channels=4, with_decoder=False).with_decoder
    assert model.arch_name == 'Genesis UNet3D (base_channels=4)'
    assert model.encoder_stages()[3] == [model.down_tr512]
    model.double()  # conversions reach the view's (shared) levels
    assert enc(torch.rand(2, 1, 8, 8, 8, dtype=torch.float64))[3].dtype == torch.float64
    assert isinstance(MODELS.build(dict(type='GenesisUNet3D', base_channels=4)), GenesisUNet3D)


def _official_checkpoint(b=4, seed=0):
    torch.manual_seed(seed)
    ref = RefUNet3D(b=b)
    state = {f'module.{k}': v for k, v in ref.state_dict().items()}
    return ref, {'epoch': 7, 'state_dict': state,
                 'optimizer_state_dict': {'state': {}, 'param_groups': [{'lr': 1.0}]}}


def test_genesis_loads_official_style_checkpoint(tmp_path):
    ref, ckpt = _official_checkpoint()
    path = tmp_path / 'Genesis_Chest_CT.pt'
    torch.save(ckpt, path)
    model = GenesisUNet3D(base_channels=4, pretrained=str(path))
    report = model.pretrained_report
    assert report['ok'] and len(report['matched']) == 106
    assert report['missing'] == [] and report['unused'] == []
    assert report['stripped_prefix'] == '' and 'module.' in ' '.join(report['notes'])
    assert all(torch.equal(v, ref.state_dict()[k]) for k, v in model.state_dict().items())


def test_genesis_loads_transvw_style_checkpoint():
    """TransVW: UNet3D under classficationNet., plus a classification head and
    projection_head / prototypes (reported unused, not loaded)."""
    ref, ckpt = _official_checkpoint(seed=1)
    state = {k.replace('module.', 'module.classficationNet.'): v
             for k, v in ckpt['state_dict'].items()}
    extra = {'module.classficationNet.conv_cls.weight': torch.zeros(8, 64, 3, 3, 3),
             'module.classficationNet.fc.weight': torch.zeros(44, 8),
             'module.projection_head.0.weight': torch.zeros(4, 4),
             'module.prototypes.weight': torch.zeros(4, 4)}
    state.update(extra)
    model = GenesisUNet3D(base_channels=4)
    report = model.load_genesis({'state_dict': state})
    assert report['ok'] and len(report['matched']) == 106
    assert sorted(report['unused']) == sorted(
        ['conv_cls.weight', 'fc.weight', 'projection_head.0.weight',
         'prototypes.weight'])
    assert all(torch.equal(v, ref.state_dict()[k]) for k, v in model.state_dict().items())


def test_genesis_load_reports_and_refuses():
    ref, ckpt = _official_checkpoint()
    enc_only = {k: v for k, v in ckpt['state_dict'].items() if 'down_tr' in k}
    model = GenesisUNet3D(base_channels=4)
    report = model.load_genesis(enc_only)  # bare state dict, decoder kept as initialised
    assert report['ok'] and len(report['matched']) == 56
    assert len(report['allowed_missing']) == 50
    head3 = GenesisUNet3D(base_channels=4, out_channels=3, with_decoder=True)
    report = head3.load_genesis(ckpt)
    assert len(report['matched']) == 104 and any('out_tr not loaded' in n
                                                 for n in report['notes'])
    enc_model = GenesisUNet3D(base_channels=4, with_decoder=False)
    report = enc_model.load_genesis(ckpt)
    assert len(report['matched']) == 56 and len(report['unused']) == 50
    broken = dict(ckpt['state_dict'])
    del broken['module.down_tr256.ops.1.conv1.weight']
    fresh = GenesisUNet3D(base_channels=4)
    before = copy.deepcopy(fresh.state_dict())
    with pytest.raises(WeightConversionError, match='1 missing'):
        fresh.load_genesis({'state_dict': broken})
    assert all(torch.equal(before[k], v) for k, v in fresh.state_dict().items())
    with pytest.raises(WeightConversionError, match='another shape'):
        GenesisUNet3D(base_channels=8).load_genesis(ckpt)
    with pytest.raises(WeightConversionError, match='no Models Genesis UNet3D'):
        fresh.load_genesis({'state_dict': {'encoder.conv1.weight': torch.zeros(1)}})
    with pytest.raises(ValueError, match='act'):
        GenesisUNet3D(act='gelu')


def test_importing_dira_mm_does_not_import_monai():
    """MONAI takes seconds to import; 2-D runs and every tool process must not pay for it
    (ResNetUNet3D, the volume transforms and the sliding window import it when used)."""
    import subprocess
    import sys
    code = ('import sys, dira_mm.models, dira_mm.datasets, dira_mm.engine, dira_mm.utils; '
            'print("monai" in sys.modules)')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == 'False'
