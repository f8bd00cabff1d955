"""Refuse a ``load_from`` / resume checkpoint whose weights do not fit the model."""
import re
from typing import List

from mmengine.hooks import Hook

from dira_mm.models.utils import unwrap
from dira_mm.models.utils.load_checked import examples, mismatch_problems
from dira_mm.registry import HOOKS
from dira_mm.utils.convert import WeightConversionError, compare_state_dicts, format_report

__all__ = ['CheckedLoadHook', 'STRICT_KEY']

#: Top-level config key; False loads what fits from a mismatching ``load_from``.
STRICT_KEY = 'load_from_strict'
# mmengine ignores these too (checkpoints from before BatchNorm counted its batches)
_ALWAYS_ALLOWED_MISSING = (r'.*num_batches_tracked', )


@HOOKS.register_module()
class CheckedLoadHook(Hook):
    """Compares a loaded checkpoint with the model key by key before mmengine copies it.

    mmengine loads ``load_from`` (and a resume) with ``strict=False``: a ResNet-18
    checkpoint given to a ResNet-50 model loads the few tensors that fit, warns, and the
    run trains on from a half-initialised model. This hook runs in
    ``after_load_checkpoint`` (the checkpoint is read, nothing is copied yet) and raises a
    ``WeightConversionError`` with the matched / missing / unexpected / shape-mismatch
    counts, the first names of each and the whole report, so nothing is loaded.

    Allowed differences:

    - missing ``num_batches_tracked`` buffers (mmengine ignores them as well);
    - for ``load_from`` (not a resume): missing model keys that match one of the model's
      ``load_from_allowed_missing`` regular expressions (full match), when the checkpoint
      has no key of that expression at all (a part that starts fresh, never a partly
      loaded one). DiRA declares its discriminator there, so the official two-run flow
      initialises a ``dira`` model from a ``dir`` checkpoint with a fresh discriminator;
    - with the top-level config key ``load_from_strict=False``: any difference of a
      ``load_from`` is logged as a warning and mmengine loads what fits (an explicit
      opt-in to a partial initialisation). A resume must always fit.
    """

    priority = 'VERY_HIGH'  # before other hooks act on the loaded checkpoint

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        resume = bool(getattr(runner, '_resume', False))
        source = getattr(runner, '_load_from', None) or 'the checkpoint'
        what = f'{"resume" if resume else "load_from"} "{source}"'
        state_dict = checkpoint.get('state_dict', checkpoint)
        # the key revision mmengine applies before loading (Runner.load_checkpoint)
        weights = {re.sub(r'^module\.', '', k): v for k, v in state_dict.items()}
        model = unwrap(runner.model)
        allowed: List[str] = list(_ALWAYS_ALLOWED_MISSING)
        if not resume:  # a part the checkpoint has none of (fresh), not a partial one
            allowed += [p for p in getattr(model, 'load_from_allowed_missing', ()) or ()
                        if not any(re.fullmatch(p, k) for k in weights)]
        model_state = model.state_dict()
        report = compare_state_dicts(weights, model_state, allowed)
        name = type(model).__name__
        if report['ok']:
            if report['allowed_missing']:
                runner.logger.info(
                    f'{what}: {len(report["matched"])} tensors loaded into {name}; '
                    f'{len(report["allowed_missing"])} model tensors keep their '
                    'initialisation (allowed by the model: '
                    f'{examples(report["allowed_missing"])}).')
            return
        problems = [f'{len(report["matched"])} of {len(model_state)} model tensors match',
                    *mismatch_problems(report)]
        summary = f'{what} does not fit {name}: {"; ".join(problems)}.'
        text = format_report(report, name)
        if not resume and runner.cfg.get(STRICT_KEY, True) is False:
            runner.logger.warning(
                f'{summary} {STRICT_KEY}=False: loading the matching tensors only; the '
                f'rest keep their initialisation.\n{text}')
            return
        hint = ('A resume must load the checkpoint of the same model: check the config '
                'against the one in the work_dir.' if resume else
                'Nothing was loaded. Use a checkpoint of the same architecture (check the '
                "config's backbone against the one the checkpoint was trained with), or "
                f'set {STRICT_KEY}=False in the config (--cfg-options {STRICT_KEY}=False) '
                'to initialise from the matching tensors only.')
        error = WeightConversionError(f'{summary} {hint}\n{text}')
        error.report = report
        raise error
