"""Volumes in the reconstruction grid: three orthogonal middle slices per cell."""
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from dira_mm.engine.hooks import ReconstructionVisHook
from dira_mm.structures import DiRADataSample
from dira_mm.visualization import orthogonal_slices, slice_panel


def _ras_volume():
    """(X, Y, Z) = (6, 5, 4) with value 100*x + 10*y + z."""
    x, y, z = np.meshgrid(np.arange(6), np.arange(5), np.arange(4), indexing='ij')
    return (100 * x + 10 * y + z).astype(np.int32)


def test_orthogonal_slices_pick_the_middle_planes_and_orient_them():
    vol = _ras_volume()
    axial, coronal, sagittal = orthogonal_slices(vol)
    assert axial.shape == (5, 6) and coronal.shape == (4, 6) and sagittal.shape == (4, 5)
    # axial: z = 2; anterior (high y) at the top row, right (high x) at the right column
    assert axial[0, 0] == 100 * 0 + 10 * 4 + 2 and axial[-1, -1] == 100 * 5 + 0 + 2
    # coronal: y = 2; superior (high z) at the top
    assert coronal[0, 0] == 0 + 20 + 3 and coronal[-1, -1] == 500 + 20 + 0
    # sagittal: x = 3; anterior (high y) on the right, superior on top
    assert sagittal[0, 0] == 300 + 0 + 3 and sagittal[-1, -1] == 300 + 40 + 0
    with pytest.raises(ValueError, match='X, Y, Z'):
        orthogonal_slices(vol[..., 0])


def test_slice_panel_layout():
    vol = _ras_volume()
    panel = slice_panel(vol, gap=2)
    assert panel.shape == (5, 6 + 2 + 6 + 2 + 5)
    axial, coronal, sagittal = orthogonal_slices(vol)
    np.testing.assert_array_equal(panel[:, :6], axial)
    np.testing.assert_array_equal(panel[1:, 8:14], coronal)  # bottom-aligned
    assert (panel[0, 8:14] == 0).all() and (panel[:, 6:8] == 0).all()
    np.testing.assert_array_equal(panel[1:, 16:], sagittal)


class _Restorer3D(nn.Module):
    """A 3-D U-Net stand-in following the backbone protocol's attributes."""
    with_decoder = True
    spatial_dims = 3

    def forward(self, x):
        return 1.0 - x  # an exact, checkable restoration


def test_volume_grid_shows_slices_of_each_column(tmp_path):
    model = nn.Module()
    model.data_preprocessor = lambda data, training=False: data
    model.backbone = _Restorer3D()
    saved = []
    runner = SimpleNamespace(model=model, work_dir=str(tmp_path), visualizer=SimpleNamespace(
        add_image=lambda name, image, step: saved.append(image)))
    hook = ReconstructionVisHook(num_samples=1)
    gen = torch.Generator().manual_seed(0)
    view = torch.rand(2, 1, 8, 6, 4, generator=gen)  # (N, C, X, Y, Z)
    target = torch.rand(1, 8, 6, 4, generator=gen)
    hook.after_train_iter(runner, 0, dict(inputs=[view], data_samples=[
        DiRADataSample(target=target), DiRADataSample(target=target)]))
    hook.render(runner, step=3)
    grid = cv2.imread(str(tmp_path / 'vis' / 'reconstruction_epoch_3.png'), cv2.IMREAD_GRAYSCALE)
    cell_w = 8 + 2 + 8 + 2 + 6  # axial (6x8) | coronal (4x8) | sagittal (4x6)
    assert grid.shape == (hook.title_height + 6, 3 * cell_w)
    row = grid[hook.title_height:]

    def expected(vol):
        return slice_panel((vol[0].clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8))

    np.testing.assert_array_equal(row[:, :cell_w], expected(view[0]))
    np.testing.assert_array_equal(row[:, cell_w:2 * cell_w], expected(1.0 - view[0]))
    np.testing.assert_array_equal(row[:, 2 * cell_w:], expected(target))
    assert saved[0].shape == grid.shape + (3, )


def test_volume_sample_with_wrong_dims_is_named(tmp_path):
    model = nn.Module()
    model.data_preprocessor = lambda data, training=False: data
    model.backbone = _Restorer3D()
    runner = SimpleNamespace(model=model, work_dir=str(tmp_path), visualizer=None)
    hook = ReconstructionVisHook(num_samples=1)
    hook.after_train_iter(runner, 0, dict(inputs=[torch.rand(1, 1, 8, 8)], data_samples=[DiRADataSample()]))
    with pytest.raises(ValueError, match='spatial_dims=3'):
        hook.make_grid(runner)
