"""mmengine's Runner whose environment printout says what a CPU-only run uses."""
import torch
from mmengine.runner import Runner

from dira_mm.registry import RUNNERS

__all__ = ['DiraRunner']


@RUNNERS.register_module()
class DiraRunner(Runner):
    """mmengine's ``Runner`` (``runner_type='DiraRunner'``, set in the default runtime).

    mmengine 0.10.7 logs ``GPU number: <world size>`` in its environment printout, so a
    CPU-only run said ``GPU number: 1``. Without CUDA this runner logs ``device: cpu (no
    CUDA)``, ``world_size: N`` and ``GPU number: 0``; with CUDA it is mmengine's printout.
    Nothing else differs from mmengine's ``Runner``.
    """

    def _log_env(self, env_cfg: dict) -> None:
        if torch.cuda.is_available():
            return super()._log_env(env_cfg)
        world_size = self._world_size
        self._world_size = 0  # mmengine prints this attribute as "GPU number"
        try:
            super()._log_env(dict(env_cfg, device='cpu (no CUDA)', world_size=world_size))
        finally:
            self._world_size = world_size
