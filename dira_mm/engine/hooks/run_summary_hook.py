"""A summary at the end of training: where the results are and what to run next."""
import glob
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

from mmengine.dist import master_only
from mmengine.hooks import CheckpointHook, Hook

from dira_mm.registry import HOOKS
from dira_mm.models.utils import get_ssl_algorithm

_STEP = re.compile(r'_(epoch|iter)_(\d+)\.pth$')


@HOOKS.register_module()
class RunSummaryHook(Hook):
    """Logs, after training, the work_dir, the last and best checkpoints (with the best
    epoch and score), the reconstruction pictures, the final training losses and the next
    commands (``tools/test.py``, the exporter of the backbone (``extract_unet.py`` or
    ``export_3d.py``), ``plot_curves.py``).

    A run otherwise ends on the last validation line, and a new user has to find the
    checkpoints, the pictures and the follow-up tools by reading the docs. The losses are
    the means over the last epoch (by-iteration runs: over the log processor's window).
    The hook only reads what the other hooks recorded in the message hub
    (``last_ckpt``, ``best_ckpt*``, ``probe_best_ckpt_*``) and the work_dir; it changes
    nothing. ``tools/test.py`` and ``runner.val()`` runs, which do not train, log no summary.
    """

    priority = 'LOWEST'

    def __init__(self) -> None:
        self._trained = False
        self._epoch_begin_iter = 0

    def before_train_epoch(self, runner) -> None:
        self._epoch_begin_iter = runner.iter

    def after_train(self, runner) -> None:
        self._trained = True

    # ----------------------------------------------------------------- collected facts
    @staticmethod
    def last_checkpoint(runner) -> Optional[str]:
        path = runner.message_hub.get_info('last_ckpt')
        if path:
            return path
        # mmengine writes the pointer into the work_dir whatever the hook's out_dir
        pointer = osp.join(runner.work_dir, 'last_checkpoint')
        if osp.isfile(pointer):
            with open(pointer) as f:
                return f.read().strip() or None
        return None

    @staticmethod
    def best_checkpoints(runner) -> List[Tuple[str, str, Optional[float], Optional[str]]]:
        """``(metric, path, score, 'epoch N')`` of every best checkpoint the run kept."""
        info = runner.message_hub.runtime_info
        save_best = []
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and getattr(hook, 'save_best', None):
                save_best = list(hook.save_best)
        out = []
        for key, path in info.items():
            match = re.fullmatch(r'(\w*?)_?best_ckpt_?(.*)', key)
            if match is None or not path or not isinstance(path, str):
                continue
            prefix, metric = match.groups()
            if not metric:  # CheckpointHook with one save_best key
                metric = save_best[0] if save_best else 'score'
            if prefix:  # e.g. ProbeHook: probe_best_ckpt_knn_auc -> probe/knn_auc
                metric = f'{prefix}/{metric}'
            score = info.get(key.replace('best_ckpt', 'best_score'))
            step = _STEP.search(path)
            out.append((metric, path, None if score is None else float(score),
                        f'{step.group(1)} {step.group(2)}' if step else None))
        return sorted(out)

    def final_losses(self, runner) -> Tuple[Dict[str, float], str]:
        if runner.train_loop is not None and getattr(runner.train_loop, '_max_epochs', None):
            n = max(runner.iter - self._epoch_begin_iter, 1)
            span = f"mean of the last epoch's {n} iterations"
        else:
            n = runner.log_processor.window_size
            span = f'mean of the last {n} iterations'
        losses = {}
        for key, buffer in runner.message_hub.log_scalars.items():
            if key.startswith('train/') and 'loss' in key:
                losses[key[len('train/'):]] = float(buffer.mean(n))
        return losses, span

    @staticmethod
    def pictures(runner) -> Optional[Tuple[str, int]]:
        folders = {osp.join(runner.work_dir, getattr(h, 'out_dir', 'vis')) for h in runner.hooks
                   if type(h).__name__ == 'ReconstructionVisHook'}
        folders.add(osp.join(runner.work_dir, 'vis'))
        for folder in sorted(folders):
            pngs = glob.glob(osp.join(folder, '*.png'))
            if pngs:
                return folder, len(pngs)
        return None

    @staticmethod
    def config_path(runner) -> str:
        """The config as the run used it (with its --cfg-options): the work_dir copy."""
        name = osp.basename(runner.cfg.filename) if runner.cfg.filename else None
        dumped = osp.join(runner.work_dir, name) if name else None
        if dumped and osp.isfile(dumped):
            return dumped
        return runner.cfg.filename or 'CONFIG'

    # ----------------------------------------------------------------- the text
    def summary(self, runner) -> str:
        lines = ['Run summary', f'  work_dir: {runner.work_dir}']
        last = self.last_checkpoint(runner)
        lines.append(f'  last checkpoint: {last or "none (no CheckpointHook saved one)"}')
        best = self.best_checkpoints(runner)
        for metric, path, score, step in best:
            value = '' if score is None else f' {metric} {score:.4f}'
            lines.append(f'  best checkpoint:{value}{" at " + step if step else ""}: {path}')
        if not best:
            lines.append('  best checkpoint: none kept (last only; see docs/defaults.md, '
                         '"Best checkpoint")')
        pictures = self.pictures(runner)
        if pictures:
            lines.append(f'  pictures: {pictures[1]} PNG in {pictures[0]}')
        losses, span = self.final_losses(runner)
        if losses:
            text = ', '.join(f'{k} {v:.4f}' for k, v in sorted(losses.items()))
            lines.append(f'  final training losses ({span}): {text}')
        ckpt = best[0][1] if best else last
        lines.append('  next:')
        if ckpt:
            lines.append(f'    python tools/test.py {self.config_path(runner)} {ckpt}')
            from dira_mm.models.algorithms.base import BaseSelfSupervisor
            algo = get_ssl_algorithm(runner.model)
            # pre-training only: the fine-tuned classifiers and segmentors are the end product
            if isinstance(algo, BaseSelfSupervisor):
                export = self.export_command(getattr(algo, 'backbone', None), ckpt,
                                             runner.work_dir)
                if export:
                    lines.append(f'    {export}')
        lines.append(f'    python tools/analysis_tools/plot_curves.py {runner.work_dir} '
                     f'--out {osp.join(runner.work_dir, "curves.png")}')
        return '\n'.join(lines)

    @staticmethod
    def export_command(backbone, ckpt: str, work_dir: str) -> Optional[str]:
        """The exporter command for ``backbone``'s weights, or None for a backbone that
        has no exporter (2-D ResNet U-Net: ``extract_unet.py``; 3-D U-Nets:
        ``export_3d.py`` in the format its consumers load)."""
        from dira_mm.models.backbones import GenesisUNet3D, ResNetUNet, ResNetUNet3D
        if isinstance(backbone, ResNetUNet):
            fmt = 'smp' if backbone.with_decoder else 'torchvision'
            out = osp.join(work_dir, 'unet.pth' if fmt == 'smp' else 'encoder.pth')
            return f'python tools/model_converters/extract_unet.py {ckpt} {out} --format {fmt}'
        if isinstance(backbone, ResNetUNet3D):
            fmt = 'flexible_unet' if backbone.with_decoder else 'monai_resnet'
            out = osp.join(work_dir, 'unet3d.pth' if backbone.with_decoder else 'encoder3d.pth')
        elif isinstance(backbone, GenesisUNet3D):
            fmt, out = 'genesis', osp.join(work_dir, 'genesis_unet3d.pt')
        else:
            return None
        return f'python tools/model_converters/export_3d.py {ckpt} {out} --format {fmt}'

    @master_only
    def after_run(self, runner) -> None:
        if not self._trained:
            return
        try:
            text = self.summary(runner)
        except Exception as e:  # the run itself succeeded; say why there is no summary
            runner.logger.warning(f'RunSummaryHook: no summary ({type(e).__name__}: {e}); the '
                                  f'results are in {runner.work_dir}.')
            return
        runner.logger.info(text)
