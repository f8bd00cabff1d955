"""dira_mm: self-supervised pre-training of medical-image models on mmengine."""
import importlib.util as _importlib_util
import os.path as _osp
import sys as _sys

if _importlib_util.find_spec('torch') is None:  # the commonest first-run mistake
    _venv = _osp.join(_osp.dirname(_osp.dirname(_osp.abspath(__file__))), '.venv')
    raise ImportError(
        f'dira_mm needs PyTorch, which this interpreter ({_sys.executable}) does not have. '
        + (f'Activate the project environment first: `. {_venv}/bin/activate` (or run '
           f'{_venv}/bin/python).' if _osp.isdir(_venv) else
           'Run `make install` in the repository (it creates .venv), then '
           '`. .venv/bin/activate`.'))

from .utils import register_safe_loader
from .version import __version__

# Every checkpoint mmengine loads goes through torch.load(weights_only=True).
register_safe_loader()

__all__ = ['__version__']
