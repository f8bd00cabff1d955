"""Checkpoint files on disk: written atomically, checked before a resume loads them.

A process killed while ``torch.save`` output is being written leaves a 0-byte or
truncated file. mmengine 0.10.7 writes every checkpoint (and ``last_checkpoint``) in place,
so such a kill can leave ``--resume`` pointing at a broken file. Here:

- :func:`save_checkpoint_atomic` has ``runner.save_checkpoint`` write to a temporary name
  in the same folder and renames it into place (``os.replace``); a reader sees the old
  complete file or the new complete file, never a partial one.
- :func:`write_text_atomic` does the same for ``last_checkpoint``.
- :func:`checkpoint_problem` says why a file is not a complete torch checkpoint (missing,
  empty, truncated) without unpickling it.
- :func:`find_resume_checkpoint` picks what an automatic resume loads: the file named by
  ``last_checkpoint`` (also after the work_dir was moved), else the newest complete
  numbered checkpoint, with a warning.
"""
import glob
import os
import os.path as osp
import re
import zipfile
from typing import Callable, List, Optional, Tuple

__all__ = [
    'IncompleteCheckpointError', 'TMP_SUFFIX', 'LAST_CHECKPOINT', 'replace_atomic',
    'write_text_atomic', 'save_checkpoint_atomic', 'checkpoint_problem',
    'numbered_checkpoints', 'find_resume_checkpoint', 'remove_stale_tmp_files'
]

#: Suffix of a checkpoint that is being written (``epoch_3.pth.tmp``).
TMP_SUFFIX = '.tmp'
#: The file in the work_dir that names the latest checkpoint (mmengine's convention).
LAST_CHECKPOINT = 'last_checkpoint'


class IncompleteCheckpointError(RuntimeError):
    """A checkpoint file is missing, empty or truncated (e.g. a save was killed)."""


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. directories cannot be opened on this platform
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def replace_atomic(src: str, dst: str) -> None:
    """Flush ``src`` to disk and rename it to ``dst`` in one step (same folder)."""
    with open(src, 'rb+') as f:
        os.fsync(f.fileno())
    os.replace(src, dst)
    _fsync_dir(osp.dirname(osp.abspath(dst)))


def write_text_atomic(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    tmp = path + TMP_SUFFIX
    with open(tmp, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _is_local(out_dir: str, file_backend=None, backend_args: Optional[dict] = None) -> bool:
    from mmengine.fileio import get_file_backend
    from mmengine.fileio.backends import LocalBackend
    backend = file_backend if file_backend is not None else get_file_backend(
        out_dir, backend_args=backend_args)
    backend = getattr(backend, 'client', backend)  # FileClient (file_client_args)
    return isinstance(backend, LocalBackend)


def save_checkpoint_atomic(runner, out_dir: str, filename: str, file_backend=None,
                           **kwargs) -> None:
    """``runner.save_checkpoint(out_dir, filename, **kwargs)`` that never leaves a partial file.

    The checkpoint is written as ``filename + '.tmp'`` in ``out_dir`` and renamed to
    ``filename`` once complete (main process; ``Runner.save_checkpoint`` writes on the main
    process only). If writing fails the temporary file is removed (a killed process leaves
    it: see :func:`remove_stale_tmp_files`); the previous ``filename``, if any, is left
    untouched. Non-local backends (``backend_args``) are
    written directly, as mmengine does.
    """
    from mmengine.dist import is_main_process
    if not _is_local(out_dir, file_backend, kwargs.get('backend_args')):
        runner.save_checkpoint(out_dir, filename, **kwargs)
        return
    tmp_name = filename + TMP_SUFFIX
    tmp_path, path = osp.join(out_dir, tmp_name), osp.join(out_dir, filename)
    try:
        runner.save_checkpoint(out_dir, tmp_name, **kwargs)
        if is_main_process():
            replace_atomic(tmp_path, path)
    except Exception:  # a kill (or Ctrl-C) leaves it; the next run's hook removes it
        if is_main_process() and osp.isfile(tmp_path):
            os.remove(tmp_path)
        raise


def checkpoint_problem(filename: str) -> Optional[str]:
    """Why ``filename`` is not a complete torch checkpoint, or None when it looks complete.

    A torch (zip) checkpoint ends with the zip's central directory, so a file cut short by
    a killed write fails to open as a zip; only that directory is read, nothing is
    unpickled. Files in torch's legacy (non-zip) format are loaded to be checked.
    """
    if not osp.exists(filename):
        return 'does not exist'
    if not osp.isfile(filename):
        return 'is not a file'
    size = osp.getsize(filename)
    if size == 0:
        return 'is empty (0 bytes; its save was interrupted)'
    if zipfile.is_zipfile(filename):
        try:
            with zipfile.ZipFile(filename) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError) as err:
            return f'is not a readable zip archive ({err})'
        if not any(n == 'data.pkl' or n.endswith('/data.pkl') for n in names):
            return 'is a zip archive but not a torch checkpoint (no data.pkl)'
        return None
    with open(filename, 'rb') as f:
        head = f.read(4)
    if head.startswith(b'PK'):
        return (f'is truncated ({size} bytes, the end of its zip archive is missing; its '
                'save was interrupted)')
    try:  # legacy (non-zip) torch format: only a full load tells
        from .checkpoint import safe_torch_load
        safe_torch_load(filename)
    except Exception as err:  # noqa: BLE001
        return f'cannot be loaded ({type(err).__name__}: {str(err).splitlines()[0][:200]})'
    return None


def numbered_checkpoints(ckpt_dir: str,
                         filename_tmpl: str = 'epoch_{}.pth') -> List[Tuple[int, str]]:
    """``(step, path)`` of the files in ``ckpt_dir`` named like ``filename_tmpl``, newest
    (highest step) first."""
    if '{}' not in filename_tmpl or not osp.isdir(ckpt_dir):
        return []
    head, tail = filename_tmpl.split('{}', 1)
    pattern = re.compile(re.escape(head) + r'(\d+)' + re.escape(tail) + '$')
    found = []
    for name in os.listdir(ckpt_dir):
        match = pattern.match(name)
        if match and osp.isfile(osp.join(ckpt_dir, name)):
            found.append((int(match.group(1)), osp.join(ckpt_dir, name)))
    return sorted(found, reverse=True)


def find_resume_checkpoint(work_dir: str,
                           ckpt_dir: Optional[str] = None,
                           filename_tmpl: str = 'epoch_{}.pth',
                           warn: Callable[[str], object] = print) -> Optional[str]:
    """The checkpoint an automatic ``--resume`` should load, or None when there is none.

    In order: the file of the name ``work_dir/last_checkpoint`` records in ``ckpt_dir``
    (the work_dir may have been moved or copied, so the recorded path may point elsewhere);
    the recorded path itself; the newest complete file named like ``filename_tmpl`` in
    ``ckpt_dir``. Each choice other than the recorded path is logged through ``warn``
    with the reason.

    Args:
        work_dir: the run's work_dir (holds ``last_checkpoint``).
        ckpt_dir: where the checkpoints are (CheckpointHook's ``out_dir``); default
            ``work_dir``.
        filename_tmpl: the CheckpointHook's ``filename_tmpl`` (``epoch_{}.pth`` or
            ``iter_{}.pth``).
        warn: called with each warning.

    Raises:
        IncompleteCheckpointError: checkpoints exist but none of them is complete; the
            message lists each with its problem.
    """
    ckpt_dir = ckpt_dir or work_dir
    record = osp.join(work_dir, LAST_CHECKPOINT)
    named = ''
    if osp.isfile(record):
        with open(record) as f:
            named = f.read().strip()
    tried: List[str] = []
    broken: List[str] = []
    if named:
        here = osp.join(ckpt_dir, osp.basename(named))
        candidates = [here, named] if osp.abspath(here) != osp.abspath(named) else [named]
        for path in candidates:
            problem = checkpoint_problem(path)
            tried.append(osp.abspath(path))
            if problem is None:
                if path != named:
                    warn(f'{record} names "{named}", outside {ckpt_dir} (the work_dir was '
                         f'moved or copied); resuming from "{path}", the file of that name '
                         'here.')
                return path
            if problem != 'does not exist' or path == named:
                broken.append(f'"{path}" {problem}')
    for step, path in numbered_checkpoints(ckpt_dir, filename_tmpl):
        if osp.abspath(path) in tried:
            continue
        problem = checkpoint_problem(path)
        if problem is None:
            if named:
                warn(f'{record} names "{named}", which cannot be resumed ('
                     f'{"; ".join(broken)}); resuming from the newest complete checkpoint '
                     f'"{path}" instead, so the steps after it are trained again.')
            else:
                warn(f'{work_dir} has no {LAST_CHECKPOINT} file; resuming from its newest '
                     f'complete checkpoint "{path}" (not restarting from scratch).')
            return path
        broken.append(f'"{path}" {problem}')
    if broken:
        raise IncompleteCheckpointError(
            f'--resume: no complete checkpoint to resume from in {ckpt_dir}: '
            + '; '.join(broken) + f'. Delete them (and {record}) to start the run again, '
            'or give --resume PATH / load_from a complete checkpoint.')
    return None


def remove_stale_tmp_files(ckpt_dir: str, work_dir: Optional[str] = None,
                           warn: Callable[[str], object] = print) -> List[str]:
    """Remove the temporary files a killed save left in ``ckpt_dir`` (``*.pth.tmp``) and
    ``work_dir`` (``last_checkpoint.tmp``), naming each through ``warn``."""
    paths = glob.glob(osp.join(glob.escape(ckpt_dir), '*.pth' + TMP_SUFFIX))
    if work_dir is not None:
        paths.append(osp.join(work_dir, LAST_CHECKPOINT + TMP_SUFFIX))
    removed = []
    for path in sorted(set(paths)):
        if osp.isfile(path):
            os.remove(path)
            removed.append(path)
            warn(f'Removed "{path}", an incomplete file left by an interrupted checkpoint '
                 'save (the complete checkpoints are untouched).')
    return removed
