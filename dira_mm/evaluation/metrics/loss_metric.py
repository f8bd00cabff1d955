"""Validation loss of a self-supervised model, as the official DiRA validates."""
import math
from typing import Dict, List, Sequence

from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from dira_mm.registry import METRICS


@METRICS.register_module()
class SSLLossMetric(BaseMetric):
    """Mean over batches (and processes) of the per-batch losses the model returns.

    The official code averages per-batch losses over all ranks and keeps the checkpoint
    with the lowest value; ``CheckpointHook(save_best='loss', rule='less')`` does the same
    with this metric. ``weighted=True`` weights each batch by its size instead.

    Args:
        weighted: weight batches by size (exact mean over samples).
        collect_device: where results are gathered ('cpu' or 'gpu').
        prefix: metric name prefix.
    """

    default_prefix = ''

    def __init__(self, weighted: bool = False, collect_device: str = 'cpu',
                 prefix: str = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.weighted = weighted

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for out in data_samples:
            if 'loss' not in out:
                raise KeyError('SSLLossMetric: the model val_step must return dicts with a '
                               '"loss" value')
            self.results.append(dict(out))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        keys = sorted({k for r in results for k in r if 'loss' in k})
        metrics = {}
        for k in keys:
            rows = [r for r in results if k in r]
            if self.weighted:
                n = sum(r['batch_size'] for r in rows)
                metrics[k] = sum(r[k] * r['batch_size'] for r in rows) / max(n, 1)
            else:
                metrics[k] = sum(r[k] for r in rows) / max(len(rows), 1)
        bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
        if bad:
            MMLogger.get_current_instance().warning(
                f'SSLLossMetric: the validation losses {bad} are not finite: the eval-mode '
                'network diverges although training losses may be finite (BatchNorm running '
                'statistics of a too small batch, too large a learning rate). Such an epoch '
                'is never chosen as the best by loss.')
        return metrics
