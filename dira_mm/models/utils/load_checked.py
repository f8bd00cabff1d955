"""The one checked way to load weights into a model: report every key, refuse partial loads.

Downstream models (classifier, segmentor) and the exporters' verification load through
:func:`load_checked` (a strict ``load_from`` can too), so a ResNet-18 file never half-fills
a ResNet-50 without an error, and every load leaves the same matched / missing /
unexpected / shape-mismatch report in the log.
"""
from typing import Mapping, Optional, Sequence

from mmengine.logging import print_log
from torch import Tensor, nn

from dira_mm.utils.convert import WeightConversionError, compare_state_dicts, format_report
from .misc import unwrap

__all__ = ['load_checked', 'strip_ddp_prefix', 'mismatch_problems', 'examples']

DDP_PREFIX = 'module.'
_EXAMPLES = 3  # keys quoted per kind of mismatch in the one-line summary of an error


def _all_prefixed(state_dict: Mapping[str, Tensor]) -> bool:
    return bool(state_dict) and all(k.startswith(DDP_PREFIX) for k in state_dict)


def strip_ddp_prefix(state_dict: Mapping[str, Tensor]) -> dict:
    """``state_dict`` without DDP's ``module.`` prefix when every key has it."""
    if _all_prefixed(state_dict):
        return {k[len(DDP_PREFIX):]: v for k, v in state_dict.items()}
    return dict(state_dict)


def examples(items: Sequence) -> str:
    """The first few items, then how many more: ``a, b, c, ... (+5 more)``."""
    more = f', ... (+{len(items) - _EXAMPLES} more)' if len(items) > _EXAMPLES else ''
    return ', '.join(str(k) for k in items[:_EXAMPLES]) + more


def mismatch_problems(report: dict) -> list:
    """One phrase per kind of mismatch in a :func:`compare_state_dicts` report, with counts
    and the first keys: ``['2 missing (a, b)', '1 with another shape (c: got ..., ...)']``."""
    problems = []
    if report['missing']:
        problems.append(f'{len(report["missing"])} missing ({examples(report["missing"])})')
    if report['unexpected']:
        problems.append(f'{len(report["unexpected"])} unexpected '
                        f'({examples(report["unexpected"])})')
    if report['shape_mismatch']:
        shapes = [f'{k}: got {tuple(g)}, expected {tuple(e)}'
                  for k, g, e in report['shape_mismatch']]
        problems.append(f'{len(shapes)} with another shape ({examples(shapes)})')
    return problems


def load_checked(module: nn.Module,
                 state_dict: Mapping[str, Tensor],
                 allowed_missing: Sequence[str] = (),
                 allowed_unexpected: Sequence[str] = (),
                 what: str = 'checkpoint',
                 target: Optional[str] = None,
                 logger: Optional[str] = 'current') -> dict:
    """Compare ``state_dict`` with ``module`` key by key, log the report, then load it.

    A checkpoint dict ``{'state_dict': ...}`` is accepted, DDP's ``module.`` prefix is
    stripped when every key has it (and the model's keys do not), and a wrapped model is
    unwrapped. Keys matching ``allowed_missing`` may be absent (they keep their current
    values, e.g. a new task head); keys matching ``allowed_unexpected`` are reported and
    not loaded. Anything else that differs (a missing, unexpected or differently shaped
    key) raises before any tensor is copied, so a model is never partially loaded.

    Args:
        module: the model (or part) to load into.
        state_dict: weights keyed as ``module.state_dict()``.
        allowed_missing: regular expressions (full match) of model keys that may be
            missing.
        allowed_unexpected: regular expressions of ``state_dict`` keys that the model may
            lack.
        what: what the weights are, for the report and errors (e.g.
            ``'model.pretrained "epoch_200.pth"'``).
        target: name of the model in the report; defaults to its class name.
        logger: where the report is logged (``print_log``'s ``logger``); None: not logged.

    Returns:
        dict: :func:`~dira_mm.utils.convert.compare_state_dicts`' report (``matched``,
        ``missing``, ``allowed_missing``, ``unexpected``, ``allowed_unexpected``,
        ``shape_mismatch``, ``ok``) plus ``what``, ``stripped_prefix`` (``'module.'`` or
        ``''``) and ``text`` (the logged report).

    Raises:
        WeightConversionError: a mismatch beyond the allowed keys; the message names
            ``what``, quotes the first keys of each kind and holds the report, which is
            also the error's ``report`` attribute.
    """
    module = unwrap(module)
    if isinstance(state_dict, Mapping) and isinstance(state_dict.get('state_dict'), Mapping):
        state_dict = state_dict['state_dict']
    model_state = module.state_dict()
    weights, stripped = dict(state_dict), ''
    if _all_prefixed(weights) and not any(k.startswith(DDP_PREFIX) for k in model_state):
        weights, stripped = strip_ddp_prefix(weights), DDP_PREFIX
    report = compare_state_dicts(weights, model_state, allowed_missing, allowed_unexpected)
    name = target or type(module).__name__
    header = f'{what}: {len(weights)} tensors' + (
        f' (DDP prefix "{DDP_PREFIX}" stripped)' if stripped else '') + '.'
    text = header + '\n' + format_report(report, name)
    report.update(what=what, stripped_prefix=stripped, text=text)
    if not report['ok']:
        problems = mismatch_problems(report)
        error = WeightConversionError(
            f'{what} does not fit {name}: {"; ".join(problems)}. Nothing was loaded. Use '
            'weights of the same architecture (check the config\'s backbone against the '
            'one the checkpoint was trained with).\n' + text)
        error.report = report
        raise error
    if logger is not None:
        print_log(text, logger=logger)
    module.load_state_dict({k: v for k, v in weights.items() if k in model_state},
                           strict=not report['allowed_missing'])
    return report
