"""Checkpoints that load with ``torch.load(weights_only=True)``, and exact resume.

Since torch 2.6, ``torch.load`` only unpickles plain data (tensors, numbers, strings,
containers) unless ``weights_only=False`` is passed. A stock mmengine 0.10.7 checkpoint
holds ``HistoryBuffer`` objects and numpy arrays/scalars (whose pickles call
``builtins.getattr``), so loading it either fails or needs the safety turned off, which
lets a downloaded file run code. dira_mm keeps the safety on:

- :func:`to_plain` turns a checkpoint into plain types (the ``SafeCheckpointHook`` calls it
  before every save) and :func:`from_plain` restores the few tagged objects on load.
- :func:`register_safe_loader` makes mmengine's checkpoint loading (resume, ``load_from``,
  ``Pretrained`` init, ``load_checkpoint``) use :func:`safe_torch_load`, which refuses
  anything else with one message naming the file, the offending globals and the fix.
- :func:`get_rng_state` / :func:`set_rng_state` capture the python, numpy and torch random
  states as plain data so that resuming continues the same random streams.
"""
import os
import os.path as osp
import pickle
import random
import warnings
from collections import Counter, OrderedDict
from pathlib import PurePath
from typing import Any, Callable, List, Optional, Union
from urllib.parse import urlparse

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

from .checkpoint_files import IncompleteCheckpointError

__all__ = [
    'UnsafeCheckpointError', 'PLAIN_TYPE_TAG', 'find_unsafe_globals',
    'safe_torch_load', 'register_safe_loader', 'to_plain', 'from_plain',
    'get_rng_state', 'set_rng_state'
]

#: Key that marks a dict produced by :func:`to_plain` for a non-plain object.
PLAIN_TYPE_TAG = '__dira_mm_type__'

SANITIZE_TOOL = 'tools/misc/sanitize_checkpoint.py'

# Types that ``weights_only=True`` unpickles without an allow-list (torch >= 2.6).
_ATOMIC_TYPES = (type(None), bool, int, float, complex, str, bytes, bytearray,
                 torch.Size, torch.dtype, torch.device)

PathLike = Union[str, os.PathLike]


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint holds objects that ``weights_only=True`` refuses to unpickle."""


def find_unsafe_globals(filename: PathLike) -> List[str]:
    """Globals in ``filename`` that ``weights_only=True`` does not allow.

    It reads the pickle opcodes only; nothing in the file is executed.
    """
    return list(torch.serialization.get_unsafe_globals_in_checkpoint(filename))


def _suggested_output(filename: str) -> str:
    root, ext = osp.splitext(filename)
    return f'{root}_plain{ext or ".pth"}'


def _refusal_message(filename: str, err: Exception) -> str:
    # torch's own text advises weights_only=False; quote only the actual reason.
    text = str(err)
    marker = 'WeightsUnpickler error:'
    if marker in text:
        reason = text.split(marker, 1)[1].split('Check the documentation')[0]
        first_line = f'{marker} {" ".join(reason.split())}'
    else:
        first_line = text.strip().splitlines()[0] if text.strip() else repr(err)
    try:
        unsafe = find_unsafe_globals(filename)
    except Exception as list_err:  # noqa: BLE001 (legacy non-zip format, or not torch)
        what = (f'It is not a torch zip checkpoint whose contents can be listed ({list_err}); '
                f'it may be corrupted or in the legacy format. torch said: {first_line}.')
    else:
        what = (f'It contains these non-plain Python globals: {unsafe}.' if unsafe else
                f'torch could not unpickle it safely: {first_line}.')
    return (
        f'Refused to load checkpoint "{filename}". {what} dira_mm loads every checkpoint '
        'with torch.load(weights_only=True) because unpickling other objects can run '
        'arbitrary code. If you trust this file (for example you saved it yourself with '
        'stock mmengine), convert it once to plain tensors/numbers/containers with\n'
        f'    python {SANITIZE_TOOL} {filename} {_suggested_output(filename)} --trust\n'
        'and use the converted file. Checkpoints saved by dira_mm with SafeCheckpointHook '
        '(in custom_hooks) are already plain.')


def safe_torch_load(filename: PathLike, map_location: Any = 'cpu') -> Any:
    """``torch.load(filename, weights_only=True)`` with a clear refusal message.

    Args:
        filename: path of the checkpoint file.
        map_location: as in :func:`torch.load`.

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        IncompleteCheckpointError: the file is empty, truncated or not a torch checkpoint
            (a ``RuntimeError``); the message names the file.
        UnsafeCheckpointError: the file holds non-plain objects; the message names the
            file, lists the offending globals and says how to convert a trusted file.
    """
    filename = osp.expanduser(os.fspath(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'Checkpoint file "{filename}" does not exist.')
    if osp.getsize(filename) == 0:
        raise IncompleteCheckpointError(
            f'Checkpoint file "{filename}" is empty (0 bytes): its save was interrupted. '
            'Use another checkpoint (tools/train.py --resume without a path picks the newest '
            'complete one of the work_dir).')
    try:
        return torch.load(filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointError(_refusal_message(filename, err)) from None
    except (RuntimeError, EOFError) as err:  # truncated or not a torch file
        raise IncompleteCheckpointError(
            f'Could not read checkpoint "{filename}" ({osp.getsize(filename)} bytes; is it a '
            f'complete torch checkpoint? A save that was interrupted leaves a truncated '
            f'file): {type(err).__name__}: {err}') from err


def load_from_local_safe(filename: str, map_location: Any = None) -> Any:
    """mmengine ``CheckpointLoader`` scheme for local paths (weights_only=True)."""
    return safe_torch_load(filename, map_location=map_location)


def load_from_http_safe(filename: str,
                        map_location: Any = None,
                        model_dir: Optional[str] = None) -> Any:
    """mmengine ``CheckpointLoader`` scheme for http(s) URLs (weights_only=True).

    The file is downloaded once into torch hub's cache (rank 0 first when distributed)
    and then loaded like a local file.
    """
    from mmengine.dist import barrier, get_dist_info

    if model_dir is None:
        model_dir = osp.join(torch.hub.get_dir(), 'checkpoints')
    cached = osp.join(model_dir, osp.basename(urlparse(filename).path))
    rank, world_size = get_dist_info()
    if rank == 0 and not osp.isfile(cached):
        os.makedirs(model_dir, exist_ok=True)
        torch.hub.download_url_to_file(filename, cached, progress=False)
    if world_size > 1:
        barrier()
    return safe_torch_load(cached, map_location=map_location)


def load_from_torchvision_safe(filename: str, map_location: Any = None) -> Any:
    """mmengine ``CheckpointLoader`` scheme for ``torchvision://NAME`` (weights_only=True)."""
    from mmengine.runner.checkpoint import get_torchvision_models

    name = filename.split('://', 1)[1]
    urls = get_torchvision_models()
    if name not in urls:
        raise KeyError(f'"{filename}": unknown torchvision model "{name}"; known models: '
                       f'{sorted(urls)}.')
    return load_from_http_safe(urls[name], map_location=map_location)


def register_safe_loader() -> None:
    """Make mmengine load local, http(s) and torchvision checkpoints with weights_only=True.

    Overrides mmengine's ``CheckpointLoader`` schemes (``''`` is the local-file default),
    which every mmengine load goes through: ``Runner.resume``, ``load_from``,
    ``load_checkpoint`` and ``init_cfg=dict(type='Pretrained')``. Idempotent.
    """
    from mmengine.runner.checkpoint import CheckpointLoader

    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_safe, force=True)
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), loader=load_from_http_safe, force=True)
    CheckpointLoader.register_scheme(
        prefixes=('modelzoo://', 'torchvision://'), loader=load_from_torchvision_safe,
        force=True)


def _ndarray_to_plain(arr: np.ndarray, path: str, report: Optional[list]) -> dict:
    arr = np.asarray(arr)
    try:
        data: Any = torch.from_numpy(np.ascontiguousarray(arr)).clone()
    except TypeError:  # object, str, longdouble, datetime ... arrays
        data = to_plain(arr.tolist(), path, report)
    return {PLAIN_TYPE_TAG: 'numpy.ndarray', 'data': data, 'dtype': arr.dtype.str,
            'shape': list(arr.shape)}


def _note(report: Optional[list], path: str, what: str) -> None:
    if report is not None:
        report.append(f'{path}: {what}')


def to_plain(obj: Any, path: str = 'checkpoint', report: Optional[list] = None) -> Any:
    """A copy of ``obj`` made of types that ``torch.load(weights_only=True)`` accepts.

    Containers are rebuilt (dict subclasses become ``dict``; ``OrderedDict`` and its
    ``_metadata`` attribute, which ``nn.Module.load_state_dict`` reads, are kept), tensors
    are kept as they are, numpy scalars become python scalars, and the objects that
    :func:`from_plain` can restore become tagged dicts: ``HistoryBuffer``, numpy arrays
    (stored as a tensor, or a list when torch has no such dtype) and numpy dtypes.
    Anything else is stored as its ``repr`` with a warning naming its place.

    Args:
        obj: the object to convert, e.g. a whole checkpoint dict.
        path: where ``obj`` lives, used in warnings and in ``report``.
        report: if given, one line per conversion is appended (``'path: what'``).
    """
    if isinstance(obj, torch.Tensor):
        if type(obj) in (torch.Tensor, torch.nn.Parameter):
            return obj
        _note(report, path, f'{type(obj).__name__} -> torch.Tensor')
        return obj.as_subclass(torch.Tensor)
    if isinstance(obj, np.generic):
        value = obj.item()
        if isinstance(value, np.generic):  # e.g. longdouble has no python equivalent
            value = float(value) if np.isrealobj(value) else complex(value)
        _note(report, path, f'numpy.{type(obj).__name__} -> {type(value).__name__}')
        return to_plain(value, path, report)
    if type(obj) in _ATOMIC_TYPES:
        return obj
    for base in (bool, int, float, complex, str, bytes):  # e.g. IntEnum, str subclasses
        if isinstance(obj, base):
            _note(report, path, f'{type(obj).__name__} -> {base.__name__}')
            return base(obj)
    if isinstance(obj, np.ndarray):
        _note(report, path, f'numpy.ndarray{list(obj.shape)} {obj.dtype} -> tagged tensor')
        return _ndarray_to_plain(obj, path, report)
    if isinstance(obj, np.dtype):
        _note(report, path, 'numpy.dtype -> tagged str')
        return {PLAIN_TYPE_TAG: 'numpy.dtype', 'str': obj.str}
    if isinstance(obj, HistoryBuffer):
        _note(report, path, 'HistoryBuffer -> tagged dict')
        return {
            PLAIN_TYPE_TAG: 'HistoryBuffer',
            'log_history': _ndarray_to_plain(obj._log_history, path, None),
            'count_history': _ndarray_to_plain(obj._count_history, path, None),
            'max_length': int(obj.max_length),
        }
    if isinstance(obj, dict):
        if type(obj) in (OrderedDict, Counter):
            out: dict = type(obj)()
        else:
            if type(obj) is not dict:
                _note(report, path, f'{type(obj).__name__} -> dict')
            out = {}
        for key, value in obj.items():
            plain_key = to_plain(key, f'{path}[{key!r}] (key)', report)
            if isinstance(plain_key, (dict, list, set)):  # unhashable after conversion
                plain_key = repr(key)
            out[plain_key] = to_plain(value, f'{path}[{key!r}]', report)
        metadata = getattr(obj, '_metadata', None)
        if metadata is not None:
            try:
                out._metadata = to_plain(metadata, f'{path}._metadata', report)
            except AttributeError:  # plain dicts take no attributes
                pass
        return out
    if isinstance(obj, (list, tuple)):
        items = [to_plain(v, f'{path}[{i}]', report) for i, v in enumerate(obj)]
        if type(obj) not in (list, tuple):
            _note(report, path, f'{type(obj).__name__} -> '
                  f'{"list" if isinstance(obj, list) else "tuple"}')
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, (set, frozenset)):
        items = [to_plain(v, f'{path}{{...}}', report) for v in obj]
        if isinstance(obj, frozenset):
            _note(report, path, 'frozenset -> tagged list')
            return {PLAIN_TYPE_TAG: 'frozenset', 'items': items}
        return set(items)
    if isinstance(obj, PurePath):
        _note(report, path, f'{type(obj).__name__} -> str')
        return str(obj)
    text = repr(obj)
    _note(report, path, f'{type(obj).__module__}.{type(obj).__qualname__} -> repr string')
    warnings.warn(
        f'{path} holds a {type(obj).__module__}.{type(obj).__qualname__}, which a '
        'weights_only checkpoint cannot store; saved as its repr string instead. Store plain '
        'values (tensors, numbers, strings, lists, dicts) there to keep it.', stacklevel=2)
    return text


def _ndarray_from_plain(obj: dict) -> np.ndarray:
    dtype = np.dtype(obj['dtype'])
    data = obj['data']
    if isinstance(data, torch.Tensor):
        arr = data.detach().cpu().numpy().astype(dtype, copy=False)
    else:
        arr = np.array(from_plain(data), dtype=dtype)
    return arr.reshape(obj['shape'])


def from_plain(obj: Any) -> Any:
    """Undo :func:`to_plain`'s tags: ``HistoryBuffer``, numpy arrays, dtypes, frozensets.

    Everything else is returned as it is; containers are rebuilt only along the way to a
    tagged dict (tensors are never copied).
    """
    if isinstance(obj, dict):
        tag = obj.get(PLAIN_TYPE_TAG)
        if tag == 'HistoryBuffer':
            return HistoryBuffer(
                _ndarray_from_plain(obj['log_history']),
                _ndarray_from_plain(obj['count_history']),
                max_length=obj['max_length'])
        if tag == 'numpy.ndarray':
            return _ndarray_from_plain(obj)
        if tag == 'numpy.dtype':
            return np.dtype(obj['str'])
        if tag == 'frozenset':
            return frozenset(from_plain(v) for v in obj['items'])
        changed = False
        values = {}
        for key, value in obj.items():
            new = from_plain(value)
            changed = changed or new is not value
            values[key] = new
        if not changed:
            return obj
        out = type(obj)() if type(obj) in (OrderedDict, Counter) else {}
        for key, value in values.items():  # not Counter.update, which adds counts
            out[key] = value
        if hasattr(obj, '_metadata'):
            out._metadata = obj._metadata
        return out
    if isinstance(obj, (list, tuple)) and not isinstance(obj, torch.Size):
        items = [from_plain(v) for v in obj]
        if all(new is old for new, old in zip(items, obj)):
            return obj
        return items if isinstance(obj, list) else tuple(items)
    return obj


def get_rng_state() -> dict:
    """The python, numpy, torch CPU and CUDA random states, as plain data."""
    name, key, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    state = {
        'python': random.getstate(),
        'numpy': {
            'bit_generator': str(name),
            'key': torch.from_numpy(np.asarray(key, dtype=np.int64)),
            'pos': int(pos),
            'has_gauss': int(has_gauss),
            'cached_gaussian': float(cached_gaussian),
        },
        'torch': torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state['torch_cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, warn: Callable[[str], Any] = warnings.warn) -> None:
    """Restore what :func:`get_rng_state` returned (missing parts are left alone).

    Args:
        state: the dict of :func:`get_rng_state`.
        warn: called with a message when a CUDA state cannot be restored exactly
            (different number of devices).
    """
    if 'python' in state:
        version, internal, gauss_next = state['python']
        random.setstate((version, tuple(internal), gauss_next))
    if 'numpy' in state:
        np_state = state['numpy']
        np.random.set_state((np_state['bit_generator'],
                             np.asarray(np_state['key'].numpy(), dtype=np.uint32),
                             np_state['pos'], np_state['has_gauss'],
                             np_state['cached_gaussian']))
    if 'torch' in state:
        torch.set_rng_state(state['torch'].cpu().to(torch.uint8))
    cuda_states = state.get('torch_cuda')
    if cuda_states and torch.cuda.is_available():
        count = torch.cuda.device_count()
        if len(cuda_states) != count:
            warn(f'The checkpoint has CUDA random states for {len(cuda_states)} devices but '
                 f'{count} are visible; restoring the first {min(count, len(cuda_states))}.')
        for idx, cuda_state in enumerate(cuda_states[:count]):
            torch.cuda.set_rng_state(cuda_state.cpu().to(torch.uint8), idx)
