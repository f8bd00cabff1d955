"""Validation and test scalars of the current evaluation, not a running mean of the past ones."""
import re
from typing import List

from mmengine.runner import LogProcessor

from dira_mm.registry import LOG_PROCESSORS

_PER_ITER = ('time', 'data_time')


@LOG_PROCESSORS.register_module()
class EvalCurrentLogProcessor(LogProcessor):
    """mmengine's ``LogProcessor`` that logs each validation's own values.

    mmengine averages every key matching ``mean_pattern`` (``loss``, ``time``, ...) over the
    last ``window_size`` entries of its buffer. Training buffers get one entry per iteration,
    so that is a smoothing; but ``val/loss`` and ``test/loss`` get one entry per evaluation
    (the metric), so the log and ``scalars.json`` showed the mean of the last <= 10
    validations instead of the current one, which the best-checkpoint choice uses. Here the
    val/test keys are the current values; ``time``/``data_time`` (one entry per iteration)
    stay the mean over the evaluation, and ``custom_cfg`` entries are kept as configured.
    Training logs are unchanged.
    """

    def _collect_scalars(self, custom_cfg: List[dict], runner, mode: str,
                         reserve_prefix: bool = False) -> dict:
        tag = super()._collect_scalars(custom_cfg, runner, mode, reserve_prefix)
        if mode not in ('val', 'test'):
            return tag
        configured = {cfg.get('log_name', cfg['data_src']) for cfg in custom_cfg}
        for full_key, buffer in runner.message_hub.log_scalars.items():
            if not full_key.startswith(f'{mode}/'):
                continue
            key = full_key[len(mode) + 1:]
            if key in _PER_ITER or key in configured:
                continue
            if re.search(self.mean_pattern, key) is not None:
                tag[full_key if reserve_prefix else key] = buffer.current()
        return tag
