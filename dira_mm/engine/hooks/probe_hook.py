"""k-NN and linear probes of the frozen encoder during pre-training (labelled AUC)."""
import copy
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dist import all_gather, broadcast_object_list, get_world_size, is_main_process
from mmengine.fileio import get_file_backend
from mmengine.hooks import CheckpointHook, Hook
from torch import Tensor, nn

from dira_mm.models.utils import get_ssl_algorithm, preserve_training_state, unwrap
from dira_mm.registry import HOOKS
from dira_mm.utils.checkpoint_files import save_checkpoint_atomic

__all__ = ['ProbeHook', 'extract_probe_features', 'preserve_training_state', 'probe_aucs']

_PROBES = ('knn', 'linear')
_SAMPLER = dict(type='DefaultSampler', shuffle=False, round_up=True)


def _gap(feat: Tensor) -> Tensor:
    """``(N, C, *spatial)`` -> ``(N, C)`` by global average pooling."""
    return feat.flatten(2).mean(2) if feat.dim() > 2 else feat


def _gather_in_order(x: Tensor, num: int) -> Tensor:
    """All ranks' rows in dataset order (``DefaultSampler(shuffle=False)`` shards)."""
    if get_world_size() == 1:
        return x[:num]
    # rank r holds samples r, r + W, r + 2W, ... (padded to equal length): interleave
    parts = all_gather(x.contiguous())
    return torch.stack([p.to(x.device) for p in parts], dim=1).flatten(0, 1)[:num]


def extract_probe_features(model: nn.Module, dataloader, stage: int = -1,
                           where: str = 'dataloader') -> Tuple[Tensor, Tensor]:
    """Pooled encoder features and ``gt_label`` of every sample of ``dataloader``.

    The batch goes through ``model.data_preprocessor`` and the SSL algorithm's
    ``extract_feat`` (the online encoder, through the backbone protocol); stage ``stage``
    of its output is globally average-pooled over all its spatial axes (images and
    volumes alike). Call it inside :func:`preserve_training_state`. Under DDP each rank
    reads its shard and the rows of all ranks are gathered in dataset order (the sampler
    must be ``DefaultSampler(shuffle=False)``, as :class:`ProbeHook` builds it).

    Returns:
        ``(features (N, C) float32, labels (N, K) float32)`` on the model's device.
    """
    base = unwrap(model)
    algo = get_ssl_algorithm(model)
    feats, labels = [], []
    for data in dataloader:
        data = base.data_preprocessor(data, False)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)):
            inputs = inputs[0]
        out = algo.extract_feat(inputs)
        out = out[stage] if isinstance(out, (list, tuple)) else out
        feats.append(_gap(out).float())
        samples = data.get('data_samples') or []
        if not samples or any('gt_label' not in ds for ds in samples):
            raise KeyError(
                f'ProbeHook: the samples of `{where}` have no gt_label. Use a labelled dataset '
                "(e.g. ChestXray14Dataset with with_label=True) and keep 'gt_label' in the "
                "meta_keys of PackDiRAInputs.")
        labels.append(torch.as_tensor(np.stack([np.asarray(ds.gt_label, dtype=np.float32)
                                                for ds in samples]), device=feats[-1].device))
    if not feats:
        raise ValueError(f'ProbeHook: `{where}` yielded no batch; it needs labelled images.')
    num = len(dataloader.dataset)
    return _gather_in_order(torch.cat(feats), num), _gather_in_order(torch.cat(labels), num)


def probe_aucs(train: Tuple[Tensor, Tensor],
               val: Tuple[Tensor, Tensor],
               probes: Sequence[str] = _PROBES,
               knn_cfg: Optional[dict] = None,
               linear_cfg: Optional[dict] = None,
               class_names: Optional[Sequence[str]] = None,
               per_class: bool = True) -> Dict[str, float]:
    """Fit each probe on ``train`` features/labels and score ``val``: AUC in percent.

    Keys: ``<probe>_auc`` (mean over the classes where AUC is defined) and, with
    ``per_class``, ``<probe>_auc/<class>``; a probe or class whose AUC is undefined (one
    label value only) is left out. ``knn_cfg`` / ``linear_cfg`` are the arguments of
    :func:`knn_predict` / :func:`linear_probe_predict`.
    """
    from dira_mm.evaluation.functional import (knn_predict, linear_probe_predict,
                                               multilabel_auc)

    (train_x, train_y), (val_x, val_y) = train, val
    names = tuple(class_names or (f'class_{i}' for i in range(val_y.shape[1])))
    results: Dict[str, float] = {}
    for probe in probes:
        if probe == 'knn':
            scores = knn_predict(train_x, train_y, val_x, **(knn_cfg or {}))
        elif probe == 'linear':
            scores = linear_probe_predict(train_x, train_y, val_x, **(linear_cfg or {}))
        else:
            raise ValueError(f'probe_aucs: unknown probe "{probe}"; choose from {_PROBES}.')
        mean, per_class_auc = multilabel_auc(scores, val_y)
        if np.isnan(mean):
            continue
        results[f'{probe}_auc'] = 100.0 * mean
        if per_class:
            for cls, value in zip(names, per_class_auc):
                if not np.isnan(value):
                    results[f'{probe}_auc/{cls}'] = 100.0 * float(value)
    return results


@HOOKS.register_module()
class ProbeHook(Hook):
    """Scores the frozen encoder with k-NN and linear probes on labelled data.

    Every ``interval`` epochs, after validation, the encoder of the SSL algorithm (its
    ``extract_feat``, stage ``stage`` average-pooled) embeds a small labelled training
    split and a labelled evaluation split; a weighted k-NN probe
    (:func:`~dira_mm.evaluation.functional.knn_predict`) and/or per-class logistic
    regressions (:func:`~dira_mm.evaluation.functional.linear_probe_predict`) score the
    evaluation split, and the mean ROC AUC over the classes (percent; classes without both
    labels in the evaluation split are left out) is logged as ``probe/knn_auc`` and
    ``probe/linear_auc``, per class as ``probe/knn_auc/<class>``. The values go through the
    message hub into the validation log line, TensorBoard and ``scalars.json`` (step: the
    epoch). Labels are watched, not learned from: pre-training is unchanged.

    Training is not changed: the model is probed in eval mode without gradients, each
    module's train/eval flag and the python/numpy/torch(/CUDA) random states are put back,
    and BatchNorm statistics, queues and EMA weights are not touched.

    With ``save_best`` the checkpoint of the best probe score so far is written as
    ``best_probe_<metric>_epoch_<N>.pth`` through ``runner.save_checkpoint`` (so
    ``SafeCheckpointHook`` makes it plain: it loads with ``torch.load(weights_only=True)``),
    next to the ``CheckpointHook``'s files; the previous one is removed. The best score is
    kept in the message hub, so it survives a resume.

    Distributed: the two dataloaders get ``DefaultSampler(shuffle=False)``; each rank
    embeds its shard, the features are all-gathered in dataset order, rank 0 fits the
    probes and broadcasts the scores, so every rank logs and decides alike.

    Schedule: the probes run at the validations whose epoch is a multiple of ``interval``
    (mmengine validates every ``val_interval`` epochs and after the last one), so make
    ``interval`` a multiple of ``val_interval``. Without a validation loop they run after
    every ``interval``-th training epoch and write to the visualizer directly.

    Args:
        train_dataloader: dataloader config of the labelled split the probes fit on
            (``sampler``, ``drop_last`` and ``shuffle`` are overridden, see above). Its
            pipeline must be deterministic, e.g. ``LoadMedicalImage``, ``Resize``,
            ``CenterCrop``, ``PackDiRAInputs``.
        val_dataloader: dataloader config of the labelled split the probes are scored on.
        interval: run after the validations of every ``interval``-th epoch (iteration
            with ``by_epoch=False``).
        probes: ``'knn'`` and/or ``'linear'``.
        classes: class names (from the dataset's ``metainfo['classes']``) to probe, e.g.
            the 3 phantom findings among ChestX-ray14's 14 columns. None: all columns.
        knn: arguments of ``knn_predict`` (default ``k=20, temperature=0.07``).
        linear: arguments of ``linear_probe_predict`` (default 300 L-BFGS steps,
            ``weight_decay=1e-4``).
        stage: which encoder stage to pool (-1: the deepest).
        per_class: also log each class's AUC.
        save_best: False, True (the first probe's mean AUC) or a metric name such as
            ``'knn_auc'`` / ``'linear_auc'``.
        by_epoch: count ``interval`` and name checkpoints in epochs (else iterations).
        out_dir: folder of the best checkpoint (default: the ``CheckpointHook``'s, else
            the work_dir).
        prefix: key prefix of the logged scalars.
    """

    # before LoggerHook (BELOW_NORMAL): the scores are part of the validation log line
    priority = 'NORMAL'

    def __init__(self,
                 train_dataloader: dict,
                 val_dataloader: dict,
                 interval: int = 1,
                 probes: Sequence[str] = ('knn', 'linear'),
                 classes: Optional[Sequence[str]] = None,
                 knn: Optional[dict] = None,
                 linear: Optional[dict] = None,
                 stage: int = -1,
                 per_class: bool = True,
                 save_best: Union[bool, str] = False,
                 by_epoch: bool = True,
                 out_dir: Optional[str] = None,
                 prefix: str = 'probe') -> None:
        if isinstance(probes, str):
            probes = (probes, )
        unknown = [p for p in probes if p not in _PROBES]
        if unknown or not probes:
            raise ValueError(f'ProbeHook: `probes` must be a non-empty subset of {_PROBES}, '
                             f'got {tuple(probes)}.')
        if interval < 1:
            raise ValueError(f'ProbeHook: `interval` must be >= 1, got {interval}.')
        for name, cfg in (('train_dataloader', train_dataloader),
                          ('val_dataloader', val_dataloader)):
            if not isinstance(cfg, dict) or 'dataset' not in cfg:
                raise TypeError(f'ProbeHook: `{name}` must be a dataloader config dict with a '
                                f'`dataset`, got {type(cfg).__name__}.')
        self.train_dataloader_cfg = copy.deepcopy(dict(train_dataloader))
        self.val_dataloader_cfg = copy.deepcopy(dict(val_dataloader))
        self.interval = int(interval)
        self.probes = tuple(probes)
        self.classes = None if classes is None else tuple(classes)
        self.knn_cfg = dict(dict(k=20, temperature=0.07), **(knn or {}))
        self.linear_cfg = dict(linear or {})
        self.stage = int(stage)
        self.per_class = per_class
        self.by_epoch = by_epoch
        self.out_dir = out_dir
        self.prefix = prefix
        self.save_best = self._best_metric(save_best)
        self._loaders: Optional[Dict[str, object]] = None
        self._columns: Optional[List[int]] = None
        self._class_names: Tuple[str, ...] = ()
        self._logged: List[str] = []
        self._warned: set = set()
        self.best_ckpt_path: Optional[str] = None

    def _best_metric(self, save_best: Union[bool, str]) -> Optional[str]:
        if save_best is False or save_best is None:
            return None
        if save_best is True:
            return f'{self.probes[0]}_auc'
        metric = str(save_best)
        if metric.startswith(self.prefix + '/'):
            metric = metric[len(self.prefix) + 1:]
        valid = [f'{p}_auc' for p in self.probes]
        if metric not in valid:
            raise ValueError(f'ProbeHook: `save_best` must be True or one of {valid} (the '
                             f'probes in `probes`), got {save_best!r}.')
        return metric

    # ------------------------------------------------------------------ data
    def _build_loader(self, runner, name: str, cfg: dict):
        from mmengine.runner import Runner

        cfg = copy.deepcopy(cfg)
        cfg.update(sampler=dict(_SAMPLER), drop_last=False)
        cfg.pop('shuffle', None)
        cfg.pop('batch_sampler', None)
        cfg.setdefault('collate_fn', dict(type='default_collate'))
        cfg.setdefault('num_workers', 0)
        try:
            return Runner.build_dataloader(cfg, seed=getattr(runner, 'seed', None))
        except (FileNotFoundError, ValueError, KeyError) as err:
            raise type(err)(f'ProbeHook `{name}`: {err}') from err

    def _columns_of(self, dataset, name: str) -> Tuple[List[int], Tuple[str, ...]]:
        names = tuple(getattr(dataset, 'metainfo', {}).get('classes') or ())
        if self.classes is None:
            return (list(range(len(names))) if names else []), names
        if not names:
            raise KeyError(f'ProbeHook: `classes` is set but the dataset of `{name}` '
                           f"({type(dataset).__name__}) has no metainfo['classes'] to find "
                           'them in; set `classes=None` to probe every label column.')
        missing = [c for c in self.classes if c not in names]
        if missing:
            raise KeyError(f'ProbeHook: `classes` {missing} are not classes of the dataset of '
                           f'`{name}`; its classes are {list(names)}.')
        return [names.index(c) for c in self.classes], self.classes

    def loaders(self, runner) -> Dict[str, object]:
        """The two probe dataloaders, built once (paths are checked when built)."""
        if self._loaders is None:
            loaders = dict(train=self._build_loader(runner, 'train_dataloader',
                                                    self.train_dataloader_cfg),
                           val=self._build_loader(runner, 'val_dataloader',
                                                  self.val_dataloader_cfg))
            cols = {k: self._columns_of(v.dataset, f'{k}_dataloader')
                    for k, v in loaders.items()}
            if cols['train'] != cols['val']:
                raise ValueError('ProbeHook: `train_dataloader` and `val_dataloader` have '
                                 f'different classes: {cols["train"][1]} vs {cols["val"][1]}.')
            self._columns, self._class_names = cols['train']
            self._loaders = loaders
        return self._loaders

    # ------------------------------------------------------------------ probes
    def _select(self, labels: Tensor) -> Tensor:
        if self._columns:
            return labels[:, self._columns]
        return labels

    def compute_scores(self, train: Tuple[Tensor, Tensor],
                       val: Tuple[Tensor, Tensor]) -> Dict[str, float]:
        """Mean (and per-class) AUC in percent of each probe; undefined ones are left out."""
        (train_x, train_y), (val_x, val_y) = train, val
        return probe_aucs((train_x, self._select(train_y)), (val_x, self._select(val_y)),
                          self.probes, self.knn_cfg, self.linear_cfg,
                          self._class_names or None, self.per_class)

    def run_probes(self, runner) -> Dict[str, float]:
        """Embed both splits, fit and score the probes; the same dict on every rank."""
        loaders = self.loaders(runner)
        start = time.perf_counter()
        with preserve_training_state(unwrap(runner.model)):
            train = extract_probe_features(runner.model, loaders['train'], self.stage,
                                           'train_dataloader')
            val = extract_probe_features(runner.model, loaders['val'], self.stage,
                                         'val_dataloader')
            embed_s = time.perf_counter() - start
            results = [self.compute_scores(train, val) if is_main_process() else None]
            broadcast_object_list(results, src=0)
        scores = results[0]
        self._warn_undefined(runner, scores)
        runner.logger.info(
            f'ProbeHook: {train[0].shape[0]} train / {val[0].shape[0]} eval images, '
            f'{train[0].shape[1]}-d features ({embed_s:.1f} s), probes '
            f'{time.perf_counter() - start - embed_s:.1f} s: '
            + ', '.join(f'{self.prefix}/{k} {v:.2f}' for k, v in scores.items()
                        if '/' not in k))
        return scores

    def _warn_undefined(self, runner, scores: Dict[str, float]) -> None:
        for probe in self.probes:
            if f'{probe}_auc' not in scores and probe not in self._warned:
                self._warned.add(probe)
                runner.logger.warning(
                    f'ProbeHook: no class has both labels in the evaluation split, so '
                    f'{self.prefix}/{probe}_auc is undefined and not logged; give '
                    '`val_dataloader` a split with positives and negatives.')

    # ------------------------------------------------------------------ schedule
    @staticmethod
    def _training(runner) -> bool:
        loop = getattr(runner, '_train_loop', None)
        return loop is not None and not isinstance(loop, dict)

    def _now(self, runner) -> int:
        """Finished epochs (iterations): the number the checkpoints are named after."""
        if not self._training(runner):
            return 0
        return runner.epoch if self.by_epoch else runner.iter

    def before_train(self, runner) -> None:
        """Build the probe dataloaders now, so a wrong path fails before training."""
        self.loaders(runner)
        self.best_ckpt_path = runner.message_hub.get_info(self._info_key('ckpt'))

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        now = self._now(runner)
        if now % self.interval:
            return
        scores = self.run_probes(runner)
        self._logged = []
        for key, value in scores.items():
            full = f'val/{self.prefix}/{key}'
            runner.message_hub.update_scalar(full, value, resumed=False)
            self._logged.append(full)
        if self.save_best and self._training(runner):
            self._save_best(runner, scores, now)

    def after_val(self, runner) -> None:
        """Drop this run's scalars, so later validations do not log them again (stale)."""
        scalars = runner.message_hub.log_scalars
        for key in self._logged:
            scalars.pop(key, None)
        self._logged = []

    def after_train_epoch(self, runner) -> None:
        """Without a validation loop, probe after the training epoch and log directly."""
        if runner.val_loop is not None:
            return
        if not self.by_epoch or not self.every_n_epochs(runner, self.interval):
            return
        scores = self.run_probes(runner)
        now = runner.epoch + 1
        runner.visualizer.add_scalars({f'{self.prefix}/{k}': v for k, v in scores.items()},
                                      step=now)
        if self.save_best:
            self._save_best(runner, scores, now)

    # ------------------------------------------------------------------ best checkpoint
    def _info_key(self, what: str) -> str:
        return f'{self.prefix}_best_{what}_{self.save_best}'

    def _save_best(self, runner, scores: Dict[str, float], now: int) -> None:
        value = scores.get(self.save_best)
        if value is None:
            return
        best = runner.message_hub.get_info(self._info_key('score'))
        if best is not None and value <= best:
            return
        out_dir, backend_args = self.out_dir, None
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook):
                out_dir = out_dir or getattr(hook, 'out_dir', None)
                backend_args = getattr(hook, 'backend_args', None)
        out_dir = out_dir or runner.work_dir
        backend = get_file_backend(out_dir, backend_args=backend_args)
        previous = self.best_ckpt_path
        unit = 'epoch' if self.by_epoch else 'iter'
        name = f'best_{self.prefix}_{self.save_best}_{unit}_{now}.pth'.replace('/', '_')
        self.best_ckpt_path = backend.join_path(out_dir, name)
        runner.message_hub.update_info(self._info_key('score'), float(value))
        runner.message_hub.update_info(self._info_key('ckpt'), self.best_ckpt_path)
        # written under a temporary name and renamed; the previous best goes only after
        # the new one is complete, so a kill never leaves no (or a broken) best checkpoint
        save_checkpoint_atomic(
            runner, out_dir, name, file_backend=backend, save_optimizer=False,
            save_param_scheduler=False,
            meta=dict(epoch=runner.epoch, iter=runner.iter,
                      probe=dict(metric=f'{self.prefix}/{self.save_best}', score=float(value))),
            by_epoch=False, backend_args=backend_args)
        if (previous and previous != self.best_ckpt_path and is_main_process()
                and backend.isfile(previous)):
            backend.remove(previous)
        runner.logger.info(f'ProbeHook: the best checkpoint with {self.prefix}/'
                           f'{self.save_best} {value:.2f} at {unit} {now} is saved to {name}.')
