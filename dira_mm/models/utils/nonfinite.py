"""Stop (or skip) a training step whose loss is NaN or Inf, naming the loss term.

A diverged run (a learning rate far too high, an exploding discriminator) otherwise goes
on to the end with NaN weights in every checkpoint. The check runs where the named loss
terms become the backward loss, :meth:`NonFiniteLossCheckMixin.parse_losses`, which every
training path calls: :class:`mmengine.model.BaseModel`'s ``train_step``,
``MMDistributedDataParallel.train_step`` and DiRA's two-player step. It costs one
``torch.isfinite`` over the stacked scalar terms and one host sync per optimizer step (an
``all_reduce`` of the flags under DDP, so every rank takes the same decision).

The policy lives in a :class:`NonFiniteGuard` on the model; ``NonFiniteCheckHook``
(``default_hooks.nonfinite_check``) installs one built from its config keys, and a model
without one uses the default: ``'stop'``.
"""
import logging
import math
from typing import Dict, Iterable, List, Optional, Tuple

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.logging import MessageHub, print_log
from torch import Tensor

__all__ = [
    'NonFiniteLossError', 'NonFiniteGuard', 'NonFiniteLossCheckMixin', 'find_nonfinite',
    'named_tensors'
]

_POLICIES = ('stop', 'skip')


class NonFiniteLossError(FloatingPointError):
    """A training loss term is NaN or Inf (raised by :class:`NonFiniteGuard`)."""


def named_tensors(obj, prefix: str = '') -> Iterable[Tuple[str, Tensor]]:
    """Every floating-point tensor in nested dicts/lists, with its path as the name."""
    if isinstance(obj, Tensor):
        if obj.is_floating_point() or obj.is_complex():
            yield prefix, obj
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from named_tensors(value, f'{prefix}.{key}' if prefix else str(key))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from named_tensors(value, f'{prefix}[{i}]')


def find_nonfinite(tensors: Iterable[Tuple[str, Tensor]]) -> Optional[str]:
    """None when every tensor is finite, else a description of the first one that is not
    (its name, how many values are NaN / Inf). One host sync when all are finite."""
    tensors = [(n, t) for n, t in tensors if t.is_floating_point() or t.is_complex()]
    if not tensors:
        return None
    flags = torch.stack([torch.isfinite(t.detach()).all().to(tensors[0][1].device)
                         for _, t in tensors])
    if bool(flags.all()):
        return None
    name, t = tensors[int((~flags).nonzero()[0])]
    t = t.detach()
    n_nan, n_inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
    return (f'{name!r} (shape {tuple(t.shape)}: {n_nan} NaN and {n_inf} Inf of '
            f'{t.numel()} values)')


def _fmt(value: float) -> str:
    return repr(value) if not math.isfinite(value) else f'{value:.4g}'


def _position() -> str:
    """'epoch E, iteration I' (1-based, as in the log lines) from the message hub."""
    hub = MessageHub.get_current_instance()
    epoch, it = hub.get_info('epoch'), hub.get_info('iter')
    parts = []
    if epoch is not None:
        parts.append(f'epoch {int(epoch) + 1}')
    if it is not None:
        parts.append(f'iteration {int(it) + 1}')
    return ', '.join(parts) or 'an unknown iteration'


class NonFiniteGuard:
    """What to do when a training loss is not finite, and the count of skipped steps.

    Args:
        policy: ``'stop'`` raises :class:`NonFiniteLossError` naming the term(s), their
            values, the epoch and iteration and what to try; ``'skip'`` skips that
            optimizer step (no backward, gradients zeroed), logs a warning and counts it.
        max_consecutive_skips: with ``'skip'``, stop anyway once this many steps of one
            optimizer (e.g. the discriminator) were skipped in a row.
        work_dir: named in the error message (where the finite checkpoints are).
        hook_key: the config key of the policy, named in the messages.
    """

    def __init__(self, policy: str = 'stop', max_consecutive_skips: int = 10,
                 work_dir: Optional[str] = None,
                 hook_key: str = 'default_hooks.nonfinite_check') -> None:
        if policy not in _POLICIES:
            raise ValueError(f'{hook_key}.loss_policy must be one of {_POLICIES}, '
                             f'got {policy!r}.')
        if int(max_consecutive_skips) < 1:
            raise ValueError(f'{hook_key}.max_consecutive_skips must be >= 1, got '
                             f'{max_consecutive_skips}.')
        self.policy = policy
        self.max_consecutive_skips = int(max_consecutive_skips)
        self.work_dir = work_dir
        self.hook_key = hook_key
        #: optimizer steps skipped in this process since the guard was made
        self.skipped = 0
        self._in_a_row: Dict[str, int] = {}

    @staticmethod
    def _loss_terms(log_vars: Dict[str, Tensor]) -> List[Tuple[str, Tensor]]:
        """The summed terms (keys containing ``'loss'``), the total ``loss`` last."""
        terms = [(k, v) for k, v in log_vars.items()
                 if 'loss' in k and k != 'loss' and isinstance(v, Tensor)]
        if isinstance(log_vars.get('loss'), Tensor):
            terms.append(('loss', log_vars['loss']))
        return terms

    def check(self, log_vars: Dict[str, Tensor], step: str = 'training',
              optim_key: str = 'optim_wrapper') -> bool:
        """True when every loss term is finite on every rank.

        Otherwise raises (``'stop'``, or too many skips in a row) or returns False
        (``'skip'``): the caller must not update the parameters.

        Args:
            log_vars: parsed losses (``BaseModel.parse_losses``' second output).
            step: which optimizer step this is, e.g. ``'generator'``; named in messages.
            optim_key: config key of that step's optimizer wrapper, named in the advice.
        """
        terms = self._loss_terms(log_vars)
        if not terms:
            return True
        flags = torch.stack([torch.isfinite(v.detach()).all() for _, v in terms]).float()
        if get_world_size() > 1:
            all_reduce(flags, op='min')  # one rank's NaN stops (or skips) every rank
        if bool(flags.all()):  # the one host sync
            self._in_a_row[step] = 0
            return True
        bad = [(k, float(v.detach().float().mean())) for (k, v), ok in
               zip(terms, flags.tolist()) if not ok]
        named = [b for b in bad if b[0] != 'loss'] or bad
        if not any(not math.isfinite(v) for _, v in named):
            what = 'a loss on another rank'
        else:
            what = ', '.join(f'{k}={_fmt(v)}' for k, v in named if not math.isfinite(v))
        where = f'{what} in the {step} step at {_position()}'
        if self.policy == 'skip':
            self.skipped += 1
            self._in_a_row[step] = self._in_a_row.get(step, 0) + 1
            in_a_row = self._in_a_row[step]
            if in_a_row < self.max_consecutive_skips:
                print_log(
                    f'Non-finite loss: {where}; skipped this {step} step ({self.skipped} '
                    f'skipped so far, {in_a_row} in a row; the run stops after '
                    f'{self.max_consecutive_skips} in a row, '
                    f'{self.hook_key}.max_consecutive_skips).',
                    logger='current', level=logging.WARNING)
                return False
            raise NonFiniteLossError(
                f'Non-finite loss: {where}; {in_a_row} {step} steps in a row were '
                f'non-finite ({self.hook_key}.max_consecutive_skips='
                f'{self.max_consecutive_skips}), the training has diverged. '
                f'{self._advice(optim_key)}')
        raise NonFiniteLossError(
            f'Non-finite loss: {where}. Training stopped before this update; no '
            f'checkpoint with non-finite weights is written. {self._advice(optim_key)} Or skip '
            f"such steps: {self.hook_key}.loss_policy='skip'.")

    def _advice(self, optim_key: str) -> str:
        ckpt = f' in {self.work_dir}' if self.work_dir else ''
        return (f'Try a lower learning rate ({optim_key}.optimizer.lr) or gradient '
                f'clipping ({optim_key}.clip_grad=dict(max_norm=1.0)), then --resume from '
                f'the last checkpoint{ckpt} (every saved checkpoint was checked finite).')


class NonFiniteLossCheckMixin:
    """Mixin for :class:`mmengine.model.BaseModel`: no optimizer step on a NaN/Inf loss.

    :meth:`parse_losses` checks the loss terms with the model's :class:`NonFiniteGuard`
    (in training mode only) and remembers whether this step must be skipped;
    :meth:`train_step` (mmengine's, plus the check) then skips ``update_params``. Models
    with their own ``train_step`` call :meth:`update_if_finite` instead of
    ``optim_wrapper.update_params``. ``MMDistributedDataParallel`` calls ``parse_losses``
    but not the module's ``train_step``, so there ``'stop'`` works and ``'skip'`` is
    refused by ``NonFiniteCheckHook`` (use ``MMSeparateDistributedDataParallel``).
    """

    _nonfinite_skip: bool = False

    @property
    def nonfinite_guard(self) -> NonFiniteGuard:
        """The guard ``NonFiniteCheckHook`` installed, else a default ``'stop'`` one."""
        guard = self.__dict__.get('_nonfinite_guard')
        if guard is None:
            guard = self.__dict__['_nonfinite_guard'] = NonFiniteGuard()
        return guard

    @nonfinite_guard.setter
    def nonfinite_guard(self, guard: NonFiniteGuard) -> None:
        self.__dict__['_nonfinite_guard'] = guard

    def parse_losses(self, losses: Dict[str, Tensor], step: str = 'training',
                     optim_key: str = 'optim_wrapper') -> Tuple[Tensor, Dict[str, Tensor]]:
        """mmengine's ``parse_losses``, then the finiteness check of every loss term.

        A skipped step logs only its finite loss terms (a NaN would spoil the smoothed
        log).
        """
        loss, log_vars = super().parse_losses(losses)
        self._nonfinite_skip = False
        if self.training and not self.nonfinite_guard.check(log_vars, step, optim_key):
            self._nonfinite_skip = True
            log_vars = type(log_vars)(
                (k, v) for k, v in log_vars.items()
                if 'loss' not in k or bool(torch.isfinite(v.detach()).all()))
        return loss, log_vars

    def update_if_finite(self, optim_wrapper, loss: Tensor) -> bool:
        """``optim_wrapper.update_params(loss)`` unless the last parsed loss was skipped."""
        if self._nonfinite_skip:
            optim_wrapper.zero_grad()
            return False
        optim_wrapper.update_params(loss)
        return True

    def train_step(self, data, optim_wrapper) -> Dict[str, Tensor]:
        """``BaseModel.train_step`` with no update on a non-finite loss."""
        with optim_wrapper.optim_context(self):
            data = self.data_preprocessor(data, True)
            losses = self._run_forward(data, mode='loss')
        parsed_losses, log_vars = self.parse_losses(losses)
        self.update_if_finite(optim_wrapper, parsed_losses)
        return log_vars
