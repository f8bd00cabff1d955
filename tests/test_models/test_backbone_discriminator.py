"""U-Net backbone (smp-compatible state dict) and the patch discriminator."""
import pytest
import segmentation_models_pytorch as smp
import torch
import torchvision

from dira_mm.models import PatchDiscriminator, ResNetUNet


def test_unet_state_dict_loads_into_smp_and_torchvision():
    net = ResNetUNet(encoder_name='resnet18')
    ref = smp.Unet('resnet18', encoder_weights=None, classes=1, activation='sigmoid')
    res = ref.load_state_dict(net.state_dict(), strict=True)
    assert not res.missing_keys and not res.unexpected_keys
    x = torch.rand(2, 3, 64, 64)
    net.eval(), ref.eval()
    assert torch.allclose(net(x), ref(x))
    enc = {k[len('encoder.'):]: v for k, v in net.state_dict().items() if k.startswith('encoder.')}
    tv = torchvision.models.resnet18()
    res = tv.load_state_dict(enc, strict=False)
    assert sorted(res.missing_keys) == ['fc.bias', 'fc.weight'] and not res.unexpected_keys


def test_unet_official_resnet50_shapes_and_decoder_widths():
    net = ResNetUNet()  # official defaults
    assert net.out_channels == [3, 64, 256, 512, 1024, 2048]
    widths = [b.conv2[0].out_channels for b in net.decoder.blocks]
    assert widths == [256, 128, 64, 32, 16]
    out = net(torch.rand(1, 3, 64, 64))
    assert out.shape == (1, 1, 64, 64) and 0 <= out.min() and out.max() <= 1  # sigmoid


def test_unet_encoder_only_and_errors():
    enc = ResNetUNet(encoder_name='resnet18', with_decoder=False)
    assert not any(k.startswith('decoder') for k in enc.state_dict())
    with pytest.raises(RuntimeError, match='with_decoder'):
        enc.forward_decoder(enc.forward_encoder(torch.rand(1, 3, 64, 64)))
    with pytest.raises(ValueError, match='decoder_channels'):
        ResNetUNet(encoder_name='resnet18', encoder_depth=4)


def test_patch_discriminator_official_layout_and_init():
    d = PatchDiscriminator()
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    norms = [m for m in d.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert len(norms) == 3 and not any(n.affine for n in norms)
    w = torch.cat([c.weight.flatten() for c in convs])
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3
    # the official hard-coded 28 x 28 follows from 224; other sizes work too
    assert d.output_shape(224, 224) == (28, 28)
    assert d(torch.rand(2, 1, 224, 224)).shape == (2, 1, 28, 28)
    assert d(torch.rand(2, 1, 64, 64)).shape == (2, 1, *d.output_shape(64, 64)) == (2, 1, 8, 8)
