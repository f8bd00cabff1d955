"""The n-dimensional contract (issue 9 §1): spatial_dims in every part, the backbone protocol.

Necks, the patch discriminator, the data preprocessors and the restorative head in 2-D and
3-D by value; dims-mismatch errors naming the config keys; a toy 3-D backbone that
implements :class:`BaseEncoderDecoder` (and nothing more) drives MoCo, DiRA ``dira``
(a 3-D adversary), its momentum copy, the segmentor and the classifier.
"""
import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import nn

from dira_mm.models.algorithms import DiRA, MoCo
from dira_mm.models.backbones import ResNetUNet
from dira_mm.models.classifiers import MultiLabelClassifier
from dira_mm.models.discriminators import PatchDiscriminator
from dira_mm.models.heads import RestorativeHead
from dira_mm.models.necks import MoCoV2Neck, NonLinearNeck
from dira_mm.models.segmentors import SegDataPreprocessor, UNetSegmentor
from dira_mm.models.utils import ClsDataPreprocessor, DiRADataPreprocessor
from dira_mm.structures import DiRADataSample, SegDataSample
from dira_mm.utils.convert import SMP_DECODER_PREFIXES, SMP_ENCODER_PREFIXES
from toy_backbones import NDToyUNet3D


def _samples(targets=None, labels=None, n=None):
    n = len(targets) if targets is not None else n
    out = []
    for i in range(n):
        ds = DiRADataSample()
        if targets is not None:
            ds.set_field(targets[i], 'target')
        if labels is not None:
            ds.gt_label = labels[i]
        out.append(ds)
    return out


# ----------------------------------------------------------------------------- necks
def test_mocov2_neck_3d_is_mean_pool_then_mlp():
    torch.manual_seed(0)
    neck = MoCoV2Neck(in_channels=4, hid_channels=5, out_channels=3, spatial_dims=3)
    assert isinstance(neck.avgpool, nn.AdaptiveAvgPool3d)
    assert isinstance(MoCoV2Neck(4, 5, 3).avgpool, nn.AdaptiveAvgPool2d)  # 2-D unchanged
    x = torch.randn(2, 4, 3, 2, 5)
    pooled = x.sum(dim=(2, 3, 4)) / 30.0
    l1, l2 = neck.mlp[0], neck.mlp[2]
    expected = torch.relu(pooled @ l1.weight.T + l1.bias) @ l2.weight.T + l2.bias
    torch.testing.assert_close(neck([torch.zeros(1), x]), expected)


def test_nonlinear_neck_3d_in_eval_is_pool_linear_bn_relu_linear():
    torch.manual_seed(1)
    neck = NonLinearNeck(4, 6, 2, num_layers=2, with_bias=True, spatial_dims=3).eval()
    x = torch.randn(3, 4, 2, 2, 2)
    pooled = x.mean(dim=(2, 3, 4))
    lin1, lin2 = neck.mlp[0], neck.mlp[3]
    hidden = torch.relu((pooled @ lin1.weight.T + lin1.bias) / (1 + 1e-5) ** 0.5)
    torch.testing.assert_close(neck(x), hidden @ lin2.weight.T + lin2.bias)
    torch.testing.assert_close(neck(pooled), neck(x))  # an (N, C) input is already pooled


def test_necks_refuse_other_dimensionality_naming_the_key():
    with pytest.raises(ValueError, match=r'spatial_dims=2.*neck\.spatial_dims'):
        MoCoV2Neck(4, 4, 2)(torch.randn(2, 4, 2, 2, 2))
    with pytest.raises(ValueError, match=r'spatial_dims=3.*neck\.spatial_dims'):
        NonLinearNeck(4, 4, 2, spatial_dims=3)(torch.randn(2, 4, 2, 2))
    with pytest.raises(ValueError, match='neck.spatial_dims must be 2'):
        MoCoV2Neck(4, 4, 2, spatial_dims=4)


# ----------------------------------------------------------------------------- discriminator
def test_patch_discriminator_3d_shape_formula_and_init_statistics():
    torch.manual_seed(0)
    disc = PatchDiscriminator(spatial_dims=3)
    assert disc.output_shape(64, 64, 32) == (8, 8, 4)
    assert disc.output_shape(224, 224) == (28, 28)
    assert disc.output_shape((17, 9, 5)) == (3, 2, 1)
    convs = [m for m in disc.modules() if isinstance(m, nn.Conv3d)]
    norms = [m for m in disc.modules() if isinstance(m, nn.InstanceNorm3d)]
    assert len(convs) == 5 and len(norms) == 3 and not any(n.affine for n in norms)
    assert not any(isinstance(m, (nn.Conv2d, nn.InstanceNorm2d)) for m in disc.modules())
    w = torch.cat([c.weight.flatten() for c in convs])
    assert w.numel() == 64 * 27 + 128 * 64 * 27 + 256 * 128 * 27 + 512 * 256 * 27 + 512 * 27
    w = w.detach()
    assert abs(float(w.mean())) < 1e-4 and abs(float(w.std()) - 0.02) < 1e-4
    with torch.no_grad():
        out = disc(torch.rand(1, 1, 64, 64, 32))
    assert out.shape == (1, 1, 8, 8, 4)


def test_patch_discriminator_slim_3d_forward_matches_formula_and_refuses_2d():
    disc = PatchDiscriminator(channels=(2, 4, 4, 4), spatial_dims=3)
    for size in [(16, 16, 8), (17, 9, 5)]:
        assert disc(torch.rand(2, 1, *size)).shape[2:] == disc.output_shape(*size)
    with pytest.raises(ValueError, match=r'model\.adversarial\.discriminator\.spatial_dims'):
        disc(torch.rand(2, 1, 16, 16))
    with pytest.raises(ValueError, match=r'model\.adversarial\.discriminator\.spatial_dims'):
        PatchDiscriminator(channels=(2, 4, 4, 4))(torch.rand(2, 1, 16, 16, 8))


# ----------------------------------------------------------------------------- preprocessors
def test_dira_preprocessor_3d_float_volumes_pass_through_and_repeat():
    g = torch.Generator().manual_seed(0)
    views = [torch.rand(2, 1, 4, 4, 2, generator=g) for _ in range(2)]
    targets = torch.rand(2, 1, 4, 4, 2, generator=g)
    pre = DiRADataPreprocessor(num_channels=1, spatial_dims=3)
    out = pre(dict(inputs=[v.clone() for v in views], data_samples=_samples(targets.clone())))
    for got, ref in zip(out['inputs'], views):
        assert got.dtype == torch.float32 and torch.equal(got, ref)  # no /255 for floats
    assert torch.equal(DiRADataPreprocessor.stack_targets(out['data_samples']), targets)

    rgb = DiRADataPreprocessor(num_channels=3, spatial_dims=3)(dict(inputs=[views[0]]))
    assert rgb['inputs'][0].shape == (2, 3, 4, 4, 2)
    for c in range(3):
        assert torch.equal(rgb['inputs'][0][:, c:c + 1], views[0])
    as_uint8 = (views[0] * 255).to(torch.uint8)
    got = pre(dict(inputs=[as_uint8]))['inputs'][0]
    assert torch.equal(got, as_uint8.float() / 255)


def test_dira_preprocessor_2d_uint8_path_unchanged_and_errors():
    x = torch.randint(0, 256, (2, 1, 6, 5), dtype=torch.uint8)
    out = DiRADataPreprocessor()(dict(inputs=[x]))['inputs'][0]
    assert torch.equal(out, (x.float() / 255.0).expand(-1, 3, -1, -1))
    with pytest.raises(ValueError, match=r'model\.data_preprocessor\.spatial_dims'):
        DiRADataPreprocessor()(dict(inputs=[torch.rand(2, 1, 4, 4, 2)]))
    with pytest.raises(ValueError, match=r'model\.data_preprocessor\.spatial_dims'):
        DiRADataPreprocessor(num_channels=1, spatial_dims=3)(
            dict(inputs=[torch.rand(2, 1, 4, 4, 2)], data_samples=_samples(torch.rand(2, 4, 4, 2))))
    with pytest.raises(ValueError, match='2 channels.*num_channels is 3'):
        DiRADataPreprocessor()(dict(inputs=[torch.rand(2, 2, 4, 4)]))


def test_cls_preprocessor_reads_crops_by_spatial_dims_not_rank():
    vol = torch.rand(2, 1, 4, 4, 2)
    pre3 = ClsDataPreprocessor(num_channels=1, mean=None, std=None, spatial_dims=3)
    assert torch.equal(pre3(dict(inputs=vol))['inputs'], vol)  # a volume batch, not crops
    crops = torch.rand(2, 5, 1, 4, 4, 2)
    assert torch.equal(pre3(dict(inputs=crops))['inputs'], crops)
    pre2 = ClsDataPreprocessor(num_channels=1, mean=[0.5], std=[0.25])
    crops2 = torch.rand(2, 5, 1, 4, 4)  # the same rank as `vol`: crops of 2-D images
    torch.testing.assert_close(pre2(dict(inputs=crops2))['inputs'], (crops2 - 0.5) / 0.25)
    with pytest.raises(ValueError, match=r'spatial_dims=3.*model\.data_preprocessor'):
        pre3(dict(inputs=torch.rand(2, 1, 4, 4)))


def test_seg_preprocessor_3d_masks():
    pre = SegDataPreprocessor(num_channels=1, spatial_dims=3)
    masks = (torch.rand(2, 1, 4, 4, 2) > 0.5).to(torch.uint8)
    samples = [SegDataSample(gt_mask=m.clone()) for m in masks]
    out = pre(dict(inputs=torch.rand(2, 1, 4, 4, 2), data_samples=samples))
    assert torch.equal(SegDataPreprocessor.stack_masks(out['data_samples']), masks.float())
    with pytest.raises(ValueError, match=r'gt_mask.*model\.data_preprocessor\.spatial_dims'):
        pre(dict(inputs=torch.rand(2, 1, 4, 4, 2),
                 data_samples=[SegDataSample(gt_mask=torch.zeros(1, 4, 4))]))


def test_restorative_head_checks_dims_only_when_told():
    rec, target = torch.rand(2, 1, 4, 4, 2), torch.rand(2, 1, 4, 4, 2)
    torch.testing.assert_close(RestorativeHead().loss(rec, target), F.mse_loss(rec, target))
    torch.testing.assert_close(RestorativeHead(spatial_dims=3).loss(rec, target),
                               ((rec - target) ** 2).mean())
    with pytest.raises(ValueError, match=r'model\.restorative\.spatial_dims'):
        RestorativeHead(spatial_dims=2).loss(rec, target)


# ----------------------------------------------------------------------------- protocol
def test_resnet_unet_protocol_prefixes_are_the_converters():
    unet = ResNetUNet('resnet18', encoder_depth=3, decoder_channels=(16, 8, 4))
    assert unet.encoder_prefixes == SMP_ENCODER_PREFIXES
    assert unet.decoder_prefixes == SMP_DECODER_PREFIXES
    assert unet.head_prefixes == ('segmentation_head.', ) and unet.arch_name == 'resnet18'
    keys = unet.state_dict().keys()
    assert all(unet.is_encoder_key(k) != unet.is_decoder_key(k) for k in keys)
    stages = unet.encoder_stages()
    assert stages[0] == [unet.encoder.conv1, unet.encoder.bn1]
    assert stages[2] == [unet.encoder.layer2]
    with pytest.raises(ValueError, match='frozen_stages=7.*choose a value in'):
        unet.frozen_stage_modules(7)


def _moco3d(**kwargs):
    return dict(type='MoCo', backbone=dict(type='NDToyUNet3D', width=4),
                neck=dict(type='MoCoV2Neck', in_channels=8, hid_channels=8, out_channels=4,
                          spatial_dims=3),
                head=dict(type='ContrastiveHead', temperature=0.2), queue_len=8, feat_dim=4,
                **kwargs)


def test_moco_3d_forward_loss_backward_and_momentum_copy():
    torch.manual_seed(0)
    cfg = {k: v for k, v in _moco3d().items() if k != 'type'}
    assert MoCo(**cfg).data_preprocessor.spatial_dims == 3  # the unconfigured default follows
    model = MoCo(**cfg, data_preprocessor=dict(num_channels=1, spatial_dims=3))
    model.init_weights()
    enc = model.backbone.encoder_module()
    copy = model.momentum_encoder.module
    online = [p for p in enc.parameters()] + list(model.neck.parameters())
    assert len(list(copy.parameters())) == len(online)  # encoder + neck, no decoder
    for p_k, p_q in zip(copy.parameters(), online):
        assert torch.equal(p_k, p_q) and p_k.data_ptr() != p_q.data_ptr()

    data = model.data_preprocessor(dict(inputs=[torch.rand(2, 1, 16, 16, 16) for _ in range(2)]))
    losses = model(data['inputs'], mode='loss')
    assert torch.isfinite(losses['loss_dis'])
    losses['loss_dis'].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())
    assert not any(p.requires_grad for p in copy.parameters())

    before = [p.detach().clone() for p in copy.parameters()]
    with torch.no_grad():
        for p in online:
            p.add_(1.0)
    model.momentum_update(0.25)
    for b, p_k, p_q in zip(before, copy.parameters(), online):
        torch.testing.assert_close(p_k, 0.25 * b + 0.75 * p_q)


def _dira3d(**over):
    cfg = dict(
        discriminative=_moco3d(),
        restorative=dict(type='RestorativeHead', spatial_dims=3),
        adversarial=dict(discriminator=dict(type='PatchDiscriminator', channels=(2, 4, 4, 4),
                                            spatial_dims=3)),
        data_preprocessor=dict(type='DiRADataPreprocessor', num_channels=1, spatial_dims=3))
    cfg.update(over)
    return cfg


def test_dira_3d_adversarial_step_by_value():
    torch.manual_seed(0)
    model = DiRA(**_dira3d())
    model.init_weights()
    g = torch.Generator().manual_seed(1)
    views = [torch.rand(2, 1, 16, 16, 16, generator=g) for _ in range(2)]
    target = torch.rand(2, 1, 16, 16, 16, generator=g)
    data = model.data_preprocessor(dict(inputs=views, data_samples=_samples(target)))
    losses, rec, tgt = model._generator_losses(data['inputs'], data['data_samples'],
                                               update_state=False)
    assert rec.shape == (2, 1, 16, 16, 16) and torch.equal(tgt, target)
    torch.testing.assert_close(losses['loss_res'], 10 * F.mse_loss(rec, target))
    with torch.no_grad():
        pred = model.discriminator(rec)
    assert pred.shape == (2, 1) + model.discriminator.output_shape(16, 16, 16)
    torch.testing.assert_close(losses['loss_adv'], 0.001 * ((pred - 1) ** 2).mean())

    ow = OptimWrapperDict(
        generator=OptimWrapper(torch.optim.SGD(model.ssl.parameters(), lr=0.1)),
        discriminator=OptimWrapper(torch.optim.SGD(model.discriminator.parameters(), lr=0.1)))
    enc_before = [p.detach().clone() for p in model.ssl.backbone.encoder_module().parameters()]
    disc_before = [p.detach().clone() for p in model.discriminator.parameters()]
    log = model.train_step(dict(inputs=views, data_samples=_samples(target)), ow)
    assert {'loss_dis', 'loss_res', 'loss_adv', 'loss_d'} <= set(log)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in log.values())
    assert any(not torch.equal(a, b) for a, b in
               zip(enc_before, model.ssl.backbone.encoder_module().parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(disc_before, model.discriminator.parameters()))


@pytest.mark.parametrize('over, key', [
    (dict(adversarial=dict(discriminator=dict(type='PatchDiscriminator', channels=(2, 4, 4, 4)))),
     'model.adversarial.discriminator.spatial_dims=2'),
    (dict(data_preprocessor=dict(type='DiRADataPreprocessor', num_channels=1)),
     'model.data_preprocessor.spatial_dims=2'),
    (dict(restorative=dict(type='RestorativeHead', spatial_dims=2)),
     'model.restorative.spatial_dims=2'),
    (dict(discriminative=dict(_moco3d(), neck=dict(type='MoCoV2Neck', in_channels=8,
                                                   hid_channels=8, out_channels=4))),
     'neck.spatial_dims=2'),
])
def test_dira_parts_that_disagree_on_spatial_dims_fail_at_build(over, key):
    with pytest.raises(ValueError, match='disagree on spatial_dims.*' + key.replace('.', r'\.')):
        DiRA(**_dira3d(**over))


def test_algorithms_need_a_protocol_backbone():
    with pytest.raises(TypeError, match='BaseEncoderDecoder'):
        MoCo(backbone=nn.Conv2d(1, 1, 1), neck=dict(type='MoCoV2Neck'),
             head=dict(type='ContrastiveHead'))


# ----------------------------------------------------------------------------- downstream
def test_segmentor_takes_any_protocol_backbone():
    torch.manual_seed(0)
    pre = dict(num_channels=1, spatial_dims=3)
    seg = UNetSegmentor(backbone=dict(type='NDToyUNet3D'), num_classes=2, freeze_encoder=True,
                        data_preprocessor=pre)
    assert isinstance(seg.backbone.head[2], nn.Identity)  # logits: activation=None
    seg.train()
    assert not seg.backbone.enc.stem[1].training
    assert not any(p.requires_grad for p in seg.backbone.encoder_module().parameters())
    assert all(p.requires_grad for p in seg.backbone.dec.parameters())
    x = torch.rand(2, 1, 8, 8, 4)
    assert seg(x).shape == (2, 2, 8, 8, 4)
    with pytest.raises(ValueError, match='6x8x4 is not a multiple of 4'):
        seg(torch.rand(2, 1, 6, 8, 4))
    with pytest.raises(ValueError, match='3-D backbone'):
        seg(torch.rand(2, 1, 8, 8))

    # a 3-D DiRA checkpoint: encoder and decoder body load, the 1-channel head is new
    src = NDToyUNet3D()
    state = {'ssl.backbone.' + k: v for k, v in src.state_dict().items()}
    state['ssl.neck.mlp.0.weight'] = torch.zeros(2, 2)
    report = seg.load_pretrained(dict(state_dict=state))
    assert report['allowed_missing'] and all(k.startswith('head.')
                                             for k in report['allowed_missing'])
    torch.testing.assert_close(seg.backbone.dec.weight, src.dec.weight)
    torch.testing.assert_close(seg.backbone.enc.stem[0].weight, src.enc.stem[0].weight)
    with pytest.raises(ValueError, match='spatial_dims=3 but model.data_preprocessor'):
        UNetSegmentor(backbone=dict(type='NDToyUNet3D'))


def test_classifier_on_volumes_pools_all_axes_and_freezes_stages():
    torch.manual_seed(0)
    pre = dict(num_channels=1, mean=None, std=None, spatial_dims=3)
    model = MultiLabelClassifier(num_classes=2, backbone=dict(type='NDToyUNet3D',
                                                              with_decoder=False),
                                 frozen_stages=0, data_preprocessor=pre)
    assert model.in_channels == 8
    x = torch.rand(3, 1, 8, 8, 4)
    feats = model.backbone.forward_encoder(x)[-1]
    torch.testing.assert_close(model.extract_feat(x), feats.mean(dim=(2, 3, 4)))
    crops = torch.rand(3, 2, 1, 8, 8, 4)
    logits = model(crops)
    assert logits.shape == (3, 2, 2)
    torch.testing.assert_close(logits[:, 1], model(crops[:, 1]))
    assert not any(p.requires_grad for p in model.backbone.enc.stem.parameters())
    assert all(p.requires_grad for p in model.backbone.enc.stage1.parameters())
    with pytest.raises(ValueError, match='spatial_dims=3 but model.data_preprocessor'):
        MultiLabelClassifier(num_classes=2, backbone=dict(type='NDToyUNet3D'))


def test_cam_refuses_volumes():
    from dira_mm.visualization.cam import class_activation_maps, grad_cams
    model = MultiLabelClassifier(
        num_classes=2, backbone=dict(type='NDToyUNet3D', with_decoder=False),
        data_preprocessor=dict(num_channels=1, mean=None, std=None, spatial_dims=3)).eval()
    for fn in (class_activation_maps, grad_cams):
        with pytest.raises(ValueError, match='2-D only'):
            fn(model, torch.rand(1, 1, 8, 8, 4))


def test_unconfigured_preprocessor_follows_the_backbone_channels():
    """No data_preprocessor in the config: a 1-channel 3-D backbone gets 1-channel 3-D
    preprocessing (a gray volume is not repeated to 3 channels); the 2-D ResNet U-Net keeps
    the official 3."""
    from dira_mm.registry import MODELS
    model = MODELS.build(dict(
        type='DiRA',
        discriminative=dict(type='RestorationOnly',
                            backbone=dict(type='GenesisUNet3D', base_channels=2)),
        restorative=dict(type='RestorativeHead')))
    pre = model.data_preprocessor
    assert (pre.spatial_dims, pre.num_channels) == (3, 1)
    vol = torch.rand(2, 1, 16, 16, 16)
    data = pre(dict(inputs=[vol], data_samples=None), training=True)
    assert data['inputs'][0].shape == (2, 1, 16, 16, 16)
    assert torch.equal(data['inputs'][0], vol)
    model2d = MODELS.build(dict(type='MoCo', backbone=dict(
        type='ResNetUNet', encoder_name='resnet18', with_decoder=False),
        neck=dict(type='MoCoV2Neck', in_channels=512, hid_channels=16, out_channels=8),
        head=dict(type='ContrastiveHead'), queue_len=16, feat_dim=8))
    assert (model2d.data_preprocessor.spatial_dims, model2d.data_preprocessor.num_channels) \
        == (2, 3)
