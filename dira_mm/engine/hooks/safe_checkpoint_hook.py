"""Plain-type checkpoints (loadable with weights_only=True) and exact resume."""
from typing import Optional

from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook

from dira_mm.registry import HOOKS
from dira_mm.utils.checkpoint import (from_plain, get_rng_state, set_rng_state,
                                      to_plain)

__all__ = ['SafeCheckpointHook']


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Saves checkpoints as plain data plus RNG states; restores both on resume.

    mmengine writes ``HistoryBuffer`` objects and numpy values into checkpoints, which
    ``torch.load(weights_only=True)`` (torch >= 2.6 default, and the only way dira_mm
    loads files) refuses. This hook runs last (priority ``'LOWEST'``) before each save and
    converts the whole checkpoint dict with :func:`~dira_mm.utils.checkpoint.to_plain`;
    after each load it restores the tagged objects, before mmengine hands the message hub
    to ``MessageHub.load_state_dict``.

    Resume is exact: the python/numpy/torch(/CUDA) random states are saved under
    ``rng_state`` and, when the runner resumes (``resume=True``, not a ``load_from``
    initialisation), restored in ``before_train``, after mmengine has re-seeded. Validation
    draws from the global torch RNG (the DataLoader's base seed); with ``isolate_val_rng``
    the state is put back after each validation, so training draws the same numbers with or
    without validation, and a checkpoint saved before validation resumes exactly.

    Limits: with ``randomness.diff_rank_seed=True`` only rank 0's state is saved, so other
    ranks keep mmengine's re-seeded state (a warning says so). DataLoader workers are
    re-created on resume; use per-sample generators (see the data contract) for exact
    augmentation with workers.

    Args:
        save_rng_state: store the RNG states in ``checkpoint['rng_state']``.
        resume_rng_state: restore them when resuming.
        isolate_val_rng: restore the RNG state after each validation run.
    """

    priority = 'LOWEST'

    def __init__(self,
                 save_rng_state: bool = True,
                 resume_rng_state: bool = True,
                 isolate_val_rng: bool = True) -> None:
        self.save_rng_state = save_rng_state
        self.resume_rng_state = resume_rng_state
        self.isolate_val_rng = isolate_val_rng
        self._pending_rng: Optional[dict] = None
        self._val_rng: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Add the RNG states and convert every entry to plain types (in place)."""
        if self.save_rng_state:
            # During validation (e.g. a best checkpoint) store the state training resumes
            # from, i.e. the one captured before validation.
            checkpoint['rng_state'] = (
                self._val_rng if self._val_rng is not None else get_rng_state())
        for key in list(checkpoint):
            checkpoint[key] = to_plain(checkpoint[key], f'checkpoint[{key!r}]')

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Restore ``HistoryBuffer``/numpy objects; keep the RNG states for a resume."""
        for key in list(checkpoint):
            checkpoint[key] = from_plain(checkpoint[key])
        if not (self.resume_rng_state and getattr(runner, '_resume', False)):
            return
        rng_state = checkpoint.get('rng_state')
        if rng_state is None:
            runner.logger.info(
                'SafeCheckpointHook: the resumed checkpoint has no rng_state; random '
                'streams restart from the seed, so the resumed run is not bit-exact.')
        self._pending_rng = rng_state

    def before_train(self, runner) -> None:
        """Restore the resumed RNG states (runs after every other ``before_train``)."""
        if self._pending_rng is None:
            return
        state, self._pending_rng = self._pending_rng, None
        randomness = getattr(runner, '_randomness_cfg', None) or {}
        if get_rank() > 0 and get_world_size() > 1 and randomness.get('diff_rank_seed'):
            runner.logger.warning(
                'SafeCheckpointHook: randomness.diff_rank_seed=True and the checkpoint only '
                "holds rank 0's RNG state; this rank keeps its re-seeded state.")
            return
        set_rng_state(state, warn=runner.logger.warning)
        runner.logger.info('SafeCheckpointHook: restored the random states of the '
                           'resumed checkpoint.')

    def before_val(self, runner) -> None:
        """Remember the RNG state so validation does not change training's draws."""
        if self.isolate_val_rng:
            self._val_rng = get_rng_state()

    def after_val(self, runner) -> None:
        """Put back the RNG state captured in :meth:`before_val`."""
        if self._val_rng is not None:
            state, self._val_rng = self._val_rng, None
            set_rng_state(state, warn=runner.logger.warning)
