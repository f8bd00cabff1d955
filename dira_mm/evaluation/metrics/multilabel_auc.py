"""Per-class ROC AUC of multi-label predictions: the ChestX-ray14 / CheXpert benchmark metric."""
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from dira_mm.registry import METRICS
from ..functional.auc import _as_numpy, multilabel_auc

__all__ = ['MultiLabelAUC']

_EPS = 1e-7


@METRICS.register_module()
class MultiLabelAUC(BaseMetric):
    """ROC AUC per class and its mean, in %, from ``pred_score`` and ``gt_label``.

    Each class's AUC is the Mann-Whitney statistic with average ranks for tied scores
    (:func:`~dira_mm.evaluation.functional.auc.multilabel_auc`, no scikit-learn); samples
    whose label for a class is not 0 or 1 (-1: uncertain/ignored) do not count for that
    class. ``auc`` is the mean over the evaluated classes that have both positives and
    negatives; a class without one of them has no AUC, is left out of the mean and of the
    per-class keys, and is named in a warning.

    Reports ``auc`` and ``auc/<class name>`` (no prefix, so
    ``CheckpointHook(save_best='auc')``, ``EarlyStoppingHook(monitor='auc')`` and
    ``ReduceOnPlateauLR(monitor='auc')`` find it), and with ``with_loss`` the masked
    binary cross-entropy of the scores as ``loss`` (the benchmark's own model-selection
    criterion; the scores are averaged over test crops first).

    Args:
        class_names: names of the model's outputs, in order; default: the dataset's
            ``metainfo['classes']`` (``class_<i>`` when there is none).
        eval_classes: the classes reported and averaged, by name or index (e.g. the five
            CheXpert competition findings); default: all.
        with_loss: also report ``loss``.
        collect_device: where results are gathered (``'cpu'`` or ``'gpu'``).
        prefix: metric name prefix (none by default).
    """

    default_prefix: Optional[str] = ''

    def __init__(self,
                 class_names: Optional[Sequence[str]] = None,
                 eval_classes: Optional[Sequence[Union[str, int]]] = None,
                 with_loss: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.class_names = tuple(class_names) if class_names is not None else None
        if isinstance(eval_classes, (str, int)):
            eval_classes = [eval_classes]
        self.eval_classes = tuple(eval_classes) if eval_classes is not None else None
        self.with_loss = bool(with_loss)

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep each sample's scores and labels."""
        for sample in data_samples:
            if 'pred_score' not in sample or 'gt_label' not in sample:
                raise KeyError(
                    'MultiLabelAUC needs `pred_score` and `gt_label` in each data sample: a '
                    'MultiLabelClassifier in predict mode and a labelled dataset packed with '
                    f'PackClsInputs (got keys {sorted(sample)}).')
            self.results.append(dict(score=_as_numpy(sample['pred_score']).ravel(),
                                     label=_as_numpy(sample['gt_label']).ravel()))

    def _names(self, num_classes: int) -> List[str]:
        names = self.class_names
        where = 'val_evaluator.class_names'
        if names is None and self.dataset_meta and self.dataset_meta.get('classes'):
            names, where = tuple(self.dataset_meta['classes']), "the dataset's classes"
        if names is None:
            return [f'class_{i}' for i in range(num_classes)]
        if len(names) != num_classes:
            raise ValueError(f'MultiLabelAUC: {where} has {len(names)} names but the model '
                             f'predicts {num_classes} classes.')
        return [str(n) for n in names]

    def _columns(self, names: List[str]) -> List[int]:
        if self.eval_classes is None:
            return list(range(len(names)))
        columns = []
        for cls in self.eval_classes:
            if isinstance(cls, (int, np.integer)) and not isinstance(cls, bool):
                if not 0 <= cls < len(names):
                    raise ValueError(f'MultiLabelAUC: eval_classes index {cls} is out of '
                                     f'range for {len(names)} classes.')
                columns.append(int(cls))
            elif cls in names:
                columns.append(names.index(cls))
            else:
                raise ValueError(f'MultiLabelAUC: eval_classes "{cls}" is not one of the '
                                 f'classes {names}.')
        return columns

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """``auc``, ``auc/<class>`` (in %) and, with ``with_loss``, ``loss``."""
        if not results:
            raise ValueError('MultiLabelAUC: no predictions to evaluate (empty dataset?).')
        widths = {len(r['score']) for r in results} | {len(r['label']) for r in results}
        if len(widths) != 1:
            raise ValueError(f'MultiLabelAUC: scores and labels differ in length {widths}; '
                             "the model's num_classes must equal the dataset's classes.")
        scores = np.stack([r['score'] for r in results])
        labels = np.stack([r['label'] for r in results])
        if not np.isfinite(scores).all():
            raise ValueError('MultiLabelAUC: the model predicted NaN or infinite scores.')
        names = self._names(scores.shape[1])
        columns = self._columns(names)
        mean, per_class = multilabel_auc(scores[:, columns], labels[:, columns])
        metrics = {'auc': 100.0 * mean}
        undefined = []
        for col, auc in zip(columns, per_class):
            if np.isnan(auc):
                undefined.append(names[col])
            else:
                metrics[f'auc/{names[col]}'] = 100.0 * float(auc)
        if undefined:
            print_log(f'MultiLabelAUC: no AUC for {undefined} (only positives or only '
                      f'negatives among {len(results)} samples); left out of the mean.',
                      logger='current', level=30)
        if self.with_loss:
            valid = labels >= 0
            prob = np.clip(scores, _EPS, 1.0 - _EPS)
            target = np.clip(labels, 0.0, 1.0)
            bce = -(target * np.log(prob) + (1.0 - target) * np.log(1.0 - prob))
            metrics['loss'] = float(bce[valid].sum() / max(int(valid.sum()), 1))
        return metrics
