"""Pictures of restoration: input / distorted / restored / target grids."""
import os
import os.path as osp
from typing import Optional

import cv2
import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.dist import master_only

from dira_mm.registry import HOOKS
from dira_mm.models.utils import get_ssl_algorithm, unwrap
from dira_mm.models.utils import preserve_training_state
from dira_mm.visualization import slice_panel, title_band


def _to_uint8(x: torch.Tensor, spatial_dims: int = 2) -> np.ndarray:
    """``(C, *spatial)`` float [0, 1] or uint8 -> a 2-D uint8 picture of the first channel:
    the image itself (2-D) or its three orthogonal middle slices side by side (3-D)."""
    if x.dim() != spatial_dims + 1:
        raise ValueError(f'ReconstructionVisHook: a sample of shape {tuple(x.shape)} is not '
                         f'(C, *spatial) with spatial_dims={spatial_dims} (the backbone\'s).')
    x = torch.nan_to_num(x.detach().float().cpu(), nan=0.0, posinf=0.0, neginf=0.0)
    if x.max() > 1.5:
        x = x / 255.0
    picture = (x[0].clamp(0, 1).numpy() * 255.0 + 0.5).astype(np.uint8)
    return slice_panel(picture) if spatial_dims == 3 else picture


@HOOKS.register_module()
class ReconstructionVisHook(Hook):
    """Writes a grid of restorations every ``interval`` epochs and after the last epoch.

    Rows are samples; columns are the view before distortion (``input``, when the
    pipeline keeps it: ``DiRAViews(keep_clean=True)``), the distorted view the network
    sees, the restoration, and the target. The same samples are drawn every time (the
    first validation batch, or the first training batch when there is no validation), so
    the grids show progress. A title band above the grid names the columns. Volumes
    (a backbone with ``spatial_dims=3``) are drawn as their axial, coronal and sagittal
    middle slices side by side in each cell. The last
    training epoch always renders (like ``CheckpointHook(save_last=True)``), so a run that
    ends between intervals still leaves its final grid. Saved as PNG under
    ``work_dir/vis/`` and sent to the visualizer (TensorBoard when configured).

    Args:
        interval: epochs between grids.
        num_samples: rows of the grid.
        out_dir: folder under the work_dir for PNGs.
    """

    priority = 'LOW'
    title_height = 16

    def __init__(self, interval: int = 1, num_samples: int = 8, out_dir: str = 'vis') -> None:
        self.interval = interval
        self.num_samples = num_samples
        self.out_dir = out_dir
        self._batch: Optional[dict] = None
        self._from_val = False

    def _stash(self, data_batch: dict, from_val: bool) -> None:
        n = self.num_samples
        self._batch = dict(inputs=[v[:n].clone() for v in data_batch['inputs']],
                           data_samples=list(data_batch['data_samples'][:n]))
        self._from_val = from_val

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._batch is None and data_batch is not None:
            self._stash(data_batch, from_val=False)

    def after_val_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if batch_idx == 0 and not self._from_val and data_batch is not None:
            self._stash(data_batch, from_val=True)

    def after_val_epoch(self, runner, metrics=None) -> None:
        # the train loop has already counted the finished epoch: runner.epoch is 1-based here
        if runner.epoch % self.interval == 0 or runner.epoch == runner.max_epochs:
            self.render(runner, step=runner.epoch)

    @staticmethod
    def _validates_after(runner) -> bool:
        """Whether mmengine's epoch loop validates after the epoch that just ended."""
        if runner.val_loop is None:
            return False
        done = runner.epoch + 1
        begin = getattr(runner.train_loop, 'val_begin', 1)
        return done >= begin and (done % runner.val_interval == 0 or done == runner.max_epochs)

    def after_train_epoch(self, runner) -> None:
        # epochs followed by a validation render in after_val_epoch (with the val batch)
        if self._validates_after(runner):
            return
        if self.every_n_epochs(runner, self.interval) or runner.epoch + 1 == runner.max_epochs:
            self.render(runner, step=runner.epoch + 1)

    @torch.no_grad()
    def make_grid(self, runner) -> Optional[np.ndarray]:
        """The grid as an (H, W) uint8 image (column titles on top), or None if nothing can
        be restored."""
        if self._batch is None:
            return None
        model = unwrap(runner.model)
        algo = get_ssl_algorithm(runner.model)
        backbone = getattr(algo, 'backbone', None)
        if backbone is None or not getattr(backbone, 'with_decoder', False):
            return None
        # eval mode without gradients; each module's own mode and the RNG states come back
        with preserve_training_state(model):
            data = model.data_preprocessor(self._batch, False)
            view = data['inputs'][getattr(model, 'restore_view', 0)]
            rec = backbone(view)
        if not torch.isfinite(rec).all():
            bad = int((~torch.isfinite(rec)).sum())
            runner.logger.warning(
                f'ReconstructionVisHook: {bad} of {rec.numel()} restored pixel values are not '
                'finite in eval mode (drawn black). The eval-mode network diverges, e.g. '
                'BatchNorm running statistics of a too small batch or too large a learning '
                'rate; the validation loss is not finite either.')
        dims = int(getattr(backbone, 'spatial_dims', 2))
        rows, titles, widths = [], [], []
        for i, ds in enumerate(data['data_samples']):
            cols = []
            if 'clean' in ds:
                cols.append(('input', _to_uint8(ds.clean, dims)))
            cols.append(('distorted', _to_uint8(view[i], dims)))
            cols.append(('restored', _to_uint8(rec[i], dims)))
            if 'target' in ds:
                cols.append(('target', _to_uint8(ds.target, dims)))
            if len(cols) > len(titles):  # the widest row names the columns
                titles = [name for name, _ in cols]
                widths = [c.shape[1] for _, c in cols]
            rows.append(np.concatenate([c for _, c in cols], axis=1))
        width = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]))) for r in rows]
        band = title_band(widths, titles, self.title_height)
        band = np.pad(band, ((0, 0), (0, width - band.shape[1])))
        return np.concatenate([band] + rows, axis=0)

    @master_only
    def render(self, runner, step: int) -> None:
        grid = self.make_grid(runner)
        if grid is None:
            return
        folder = osp.join(runner.work_dir, self.out_dir)
        os.makedirs(folder, exist_ok=True)
        cv2.imwrite(osp.join(folder, f'reconstruction_epoch_{step}.png'), grid)
        runner.visualizer.add_image('reconstruction', np.stack([grid] * 3, axis=-1), step=step)
