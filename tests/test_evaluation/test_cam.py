"""CAM / Grad-CAM against their definitions, localisation of a known object, the pointing
game, overlays, and tools/analysis_tools/vis_cam.py on the phantom demo data."""
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dira_mm.evaluation.functional import pointing_game_hit
from dira_mm.models import MultiLabelClassifier
from dira_mm.visualization import (class_activation_maps, colour_bar, grad_cams,
                                   normalize_cams, overlay_heatmap, title_band)
from helpers import load_tool

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = osp.join(REPO, 'configs', 'benchmarks', 'classification',
                  'resnet18_finetune_1xb16-adam-10e_demo.py')


def _classifier(seed: int = 0, **kwargs) -> MultiLabelClassifier:
    torch.manual_seed(seed)
    model = MultiLabelClassifier(
        num_classes=3, backbone=dict(type='ResNetUNet', encoder_name='resnet18',
                                     with_decoder=False), **kwargs)
    model.init_weights()
    with torch.no_grad():  # a head with some weight, and a bias that must be accounted for
        model.head.weight.normal_(0, 0.2)
        model.head.bias.copy_(torch.tensor([0.3, -0.2, 0.1]))
    return model.eval()


def test_cam_is_the_logit_spread_over_the_image():
    model = _classifier()
    inputs = torch.randn(2, 3, 64, 64)
    maps, logits = class_activation_maps(model, inputs, upsample=False)
    assert maps.shape == (2, 3, 2, 2)
    with torch.no_grad():
        expected = model(inputs)
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    # spatial mean of the map + bias = logit, class by class
    torch.testing.assert_close(maps.mean((2, 3)) + model.head.bias, expected, rtol=1e-5,
                               atol=1e-5)
    # by hand for one pixel: W[k] . A[:, y, x]
    feats = model.feature_map(inputs).detach()
    torch.testing.assert_close(maps[1, 2, 0, 1], model.head.weight[2] @ feats[1, :, 0, 1])
    # a subset of classes, resized to the input
    sub, _ = class_activation_maps(model, inputs, classes=[2])
    assert sub.shape == (2, 1, 64, 64)
    torch.testing.assert_close(sub, F.interpolate(maps[:, 2:], size=(64, 64), mode='bilinear',
                                                  align_corners=False))


def test_gradcam_on_the_last_map_is_relu_cam_over_its_area():
    model = _classifier(seed=1)
    inputs = torch.randn(2, 3, 96, 96)
    cam, logits = class_activation_maps(model, inputs, upsample=False)
    grad, grad_logits = grad_cams(model, inputs, upsample=False)
    h, w = cam.shape[-2:]
    torch.testing.assert_close(grad, F.relu(cam) / (h * w), rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(grad_logits, logits, rtol=1e-5, atol=1e-5)
    assert all(p.grad is None for p in model.parameters())  # nothing accumulated


def test_gradcam_at_a_shallower_layer_and_through_a_linear_probe():
    model = _classifier(seed=2, linear_probe=True)
    inputs = torch.randn(1, 3, 64, 64)
    maps, _ = grad_cams(model, inputs, classes=[0, 1], target_layer='backbone.encoder.layer3')
    assert maps.shape == (1, 2, 64, 64) and (maps >= 0).all() and maps.sum() > 0
    assert model.linear_probe  # restored
    low, _ = grad_cams(model, inputs, classes=[0], target_layer='backbone.encoder.layer3',
                       upsample=False)
    assert low.shape[-2:] == (4, 4)  # layer3 is stride 16
    with pytest.raises(KeyError, match='layer9'):
        grad_cams(model, inputs, target_layer='backbone.encoder.layer9')
    with pytest.raises(ValueError, match=r'\[0, 3\)'):
        class_activation_maps(model, inputs, classes=[3])
    with pytest.raises(TypeError, match='feature_map'):
        class_activation_maps(nn.Linear(2, 2), inputs)


class _BlobDetector(nn.Module):
    """A known "encoder": a matched filter for bright disks of radius ~r, ReLU, stride 4."""

    def __init__(self, radius: int) -> None:
        super().__init__()
        size = 4 * radius + 1
        yy, xx = np.mgrid[:size, :size] - 2 * radius
        d = np.hypot(yy, xx)
        kernel = (d <= radius).astype(np.float32)
        kernel -= ((d > radius) & (d <= 2 * radius)) * kernel.sum() / max(
            ((d > radius) & (d <= 2 * radius)).sum(), 1)
        self.conv = nn.Conv2d(3, 1, size, padding=2 * radius, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(kernel).expand(1, 3, size, size) / 3)

    def forward_encoder(self, x):
        return F.avg_pool2d(F.relu(self.conv(x)), 4)


def test_cam_peak_lands_on_a_known_nodule():
    """A disk at a random place on smooth noise: the upsampled CAM's peak is on the disk
    (so the maps are aligned with the image, not shifted by the resize)."""
    rng = np.random.default_rng(0)
    model = _classifier()
    model.backbone = _BlobDetector(radius=4)
    model.head = nn.Linear(1, 1)
    with torch.no_grad():
        model.head.weight.fill_(1.0)
        model.head.bias.zero_()
    model.num_classes = 1
    hits = []
    for _ in range(12):
        size, r = 96, 4
        noise = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 3)
        cy, cx = rng.integers(r + 2, size - r - 2, size=2)
        yy, xx = np.mgrid[:size, :size]
        disk = np.hypot(yy - cy, xx - cx) <= r
        img = 0.05 * noise / (np.abs(noise).max() + 1e-8) + 1.0 * disk
        inputs = torch.from_numpy(img).float().expand(1, 3, size, size).contiguous()
        maps, _ = class_activation_maps(model, inputs)
        assert maps.shape == (1, 1, size, size)
        hits.append(pointing_game_hit(maps[0, 0], disk, tolerance=0))
        y, x = np.unravel_index(int(maps[0, 0].argmax()), (size, size))
        assert np.hypot(y - cy, x - cx) <= r + 1, (y, x, cy, cx)
    assert all(hits)


def test_pointing_game():
    sal = np.zeros((10, 10))
    sal[2, 3] = 1.0
    mask = np.zeros((10, 10), bool)
    mask[2, 3] = True
    assert pointing_game_hit(sal, mask)
    mask[:] = False
    mask[2, 7] = True  # 4 px away
    assert not pointing_game_hit(sal, mask)
    assert not pointing_game_hit(sal, mask, tolerance=3.9)
    assert pointing_game_hit(sal, mask, tolerance=4.0)
    sal[2, 7] = 1.0  # a tie at the maximum that hits
    assert pointing_game_hit(torch.from_numpy(sal), torch.from_numpy(mask))
    with pytest.raises(ValueError, match='empty'):
        pointing_game_hit(sal, np.zeros((10, 10), bool))
    with pytest.raises(ValueError, match='same'):
        pointing_game_hit(sal, np.ones((5, 5), bool))


def test_normalize_and_overlay():
    maps = torch.tensor([[[[-1.0, 0.0], [1.0, 3.0]]]])
    norm = normalize_cams(maps)
    torch.testing.assert_close(norm, torch.tensor([[[[0.0, 0.0], [1 / 3, 1.0]]]]))
    signed = normalize_cams(maps, positive_only=False)
    torch.testing.assert_close(signed, torch.tensor([[[[0.0, 0.25], [0.5, 1.0]]]]))
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4) * 10
    heat = np.zeros((4, 4), np.float32)
    heat[0, 0] = 1.0
    out = overlay_heatmap(gray, heat, alpha=0.5)
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    # no heat: the radiograph unchanged; full heat: half radiograph, half jet's top colour
    np.testing.assert_array_equal(out[1:, :, 0], gray[1:])
    top = cv2.applyColorMap(np.full((1, 1), 255, np.uint8), cv2.COLORMAP_JET)[0, 0]
    np.testing.assert_allclose(out[0, 0], 0.5 * gray[0, 0] + 0.5 * top.astype(float), atol=1)
    with pytest.raises(ValueError, match='size'):
        overlay_heatmap(gray, np.zeros((3, 3)))


def _assert_jet_scale(bar, height):
    """The bar's rows are jet's colours of a ramp from 1 (top) down to 0 (bottom)."""
    ramp = np.round(np.linspace(255.0, 0.0, height)).astype(np.uint8)
    jet = cv2.applyColorMap(ramp[:, None], cv2.COLORMAP_JET)[:, 0]
    np.testing.assert_array_equal(bar, np.repeat(jet[:, None], bar.shape[1], axis=1))
    # monotone in the colormap: red (high) at the top, blue (low) at the bottom
    assert bar[0, 0, 2] > 100 and bar[0, 0, 0] < 50
    assert bar[-1, 0, 0] > 100 and bar[-1, 0, 2] < 50


def test_colour_bar_and_title_band():
    bar = colour_bar(64, low=0.0, high=1.0, bar_width=10, label_width=30)
    assert bar.shape == (64, 40, 3) and bar.dtype == np.uint8
    _assert_jet_scale(bar[:, :10], 64)
    # the range is printed: white text at the top ('1') and at the bottom ('0')
    assert (bar[:16, 10:] > 128).any() and (bar[-16:, 10:] > 128).any()
    assert not bar[20:44, 10:].any()
    band = title_band([40, 50], ['input', 'restored'], height=16)
    assert band.shape == (16, 90) and band.dtype == np.uint8
    assert (band[:, :40] > 128).sum() > 10 and (band[:, 40:] > 128).sum() > 10
    with pytest.raises(ValueError, match='titles'):
        title_band([40], ['a', 'b'])


def test_vis_cam_tool_writes_overlays(tmp_path):
    from mmengine.config import Config

    from dira_mm.datasets.phantom import make_demo_dataset
    from dira_mm.registry import MODELS

    data_root = str(tmp_path / 'demo')
    make_demo_dataset(data_root, num_train=4, num_val=3, size=96, seed=0)
    cfg = Config.fromfile(CONFIG, lazy_import=False)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ckpt = str(tmp_path / 'cls.pth')
    torch.save({'meta': {}, 'state_dict': model.state_dict()}, ckpt)
    options = []
    for split in ('val', 'test'):
        options += [f'{split}_dataloader.dataset.dataset.data_root={data_root}',
                    f'{split}_dataloader.dataset.dataset.pipeline.1.size=37',
                    f'{split}_dataloader.dataset.dataset.pipeline.2.size=32']
    out_dir = str(tmp_path / 'cam')
    tool = load_tool('analysis_tools', 'vis_cam')
    summary = tool.main([CONFIG, ckpt, '--indices', '0', '2', '--classes', 'Nodule',
                         'Effusion', '--out-dir', out_dir, '--cfg-options'] + options)
    assert summary['classes'] == ['Nodule', 'Effusion']
    assert [img['index'] for img in summary['images']] == [0, 2]
    lines = open(osp.join(data_root, 'val.txt')).read().split('\n')
    model.eval()
    for img in summary['images']:
        png = cv2.imread(img['png'])
        # caption strip 18 px + the 32 px view at scale 2; three panels and the 40 px colour
        # bar with 2 px gaps
        assert png.shape == (18 + 64, 3 * 64 + 40 + 3 * 2, 3)
        _assert_jet_scale(png[18:, 3 * 66:3 * 66 + 10], 64)
        for k in range(4):  # every column has its caption (white text on black)
            assert (png[:18, k * 66:k * 66 + 64] > 128).any(), k
        labels = lines[img['index']].split()[1:]
        assert [c['label'] for c in img['cams']] == [float(labels[5]), float(labels[2])]
        for c in img['cams']:
            assert 0 <= c['prob'] <= 1 and all(0 <= v < 32 for v in c['peak_xy'])
    saved = json.load(open(osp.join(out_dir, 'cams.json')))
    assert saved['images'][1]['cams'][0]['prob'] == summary['images'][1]['cams'][0]['prob']

    # files (here the real DICOM radiograph) and Grad-CAM at layer3
    summary = tool.main([CONFIG, ckpt, '--img', osp.join(data_root, 'RG1_UNCI.dcm'),
                         '--method', 'gradcam', '--target-layer', 'backbone.encoder.layer3',
                         '--out-dir', out_dir, '--cfg-options'] + options)
    (img, ) = summary['images']
    assert img['name'] == 'RG1_UNCI' and len(img['cams']) == 3
    assert osp.isfile(img['png']) and img['cams'][0]['label'] is None
    with pytest.raises(SystemExit, match='Pneumonia'):
        tool.main([CONFIG, ckpt, '--indices', '0', '--classes', 'Pneumonia', '--out-dir',
                   out_dir, '--cfg-options'] + options)
