"""mmengine's Runner whose environment printout says what a CPU-only run uses and which
formats its config text once."""
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from dira_mm.registry import RUNNERS

__all__ = ['DiraRunner', 'TextCachedConfig']


class TextCachedConfig(Config):
    """A ``Config`` whose ``pretty_text`` is formatted once per content.

    mmengine formats the whole config with yapf each time it logs, dumps, visualises or
    checkpoints it: seven times per run and once more per checkpoint. For a 3-D config
    with four volume pipelines that is about a second each on a CPU core. The text is
    kept with the ``repr`` of the config's dict (microseconds) and formatted again only
    when the content changed, so the same string comes back as before.
    """

    @property
    def pretty_text(self) -> str:
        key = (repr(self._cfg_dict), self._filename, self._format_python_code)
        cached = self.__dict__.get('_dira_text')
        if cached is None or cached[0] != key:
            cached = (key, super().pretty_text)
            object.__setattr__(self, '_dira_text', cached)
        return cached[1]


@RUNNERS.register_module()
class DiraRunner(Runner):
    """mmengine's ``Runner`` (``runner_type='DiraRunner'``, set in the default runtime).

    mmengine 0.10.7 logs ``GPU number: <world size>`` in its environment printout, so a
    CPU-only run said ``GPU number: 1``. Without CUDA this runner logs ``device: cpu (no
    CUDA)``, ``world_size: N`` and ``GPU number: 0``; with CUDA it is mmengine's printout.
    Its ``cfg`` is a :class:`TextCachedConfig` (the config text is formatted once, not at
    every log, dump and checkpoint). Nothing else differs from mmengine's ``Runner``.
    """

    @property
    def cfg(self) -> Config:
        """The run's config (mmengine's ``Runner.__init__`` assigns a deep copy)."""
        return self.__dict__['_dira_cfg']

    @cfg.setter
    def cfg(self, value: Config) -> None:
        if type(value) is Config:  # same state, one overridden property
            object.__setattr__(value, '__class__', TextCachedConfig)
        self.__dict__['_dira_cfg'] = value

    def _log_env(self, env_cfg: dict) -> None:
        if torch.cuda.is_available():
            return super()._log_env(env_cfg)
        world_size = self._world_size
        self._world_size = 0  # mmengine prints this attribute as "GPU number"
        try:
            super()._log_env(dict(env_cfg, device='cpu (no CUDA)', world_size=world_size))
        finally:
            self._world_size = world_size
