"""CheckpointHook whose files are always complete, and an auto-resume that finds one."""
import os.path as osp

from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook

from dira_mm.registry import HOOKS
from dira_mm.utils.checkpoint_files import (LAST_CHECKPOINT, IncompleteCheckpointError,
                                            checkpoint_problem, find_resume_checkpoint,
                                            remove_stale_tmp_files, save_checkpoint_atomic,
                                            write_text_atomic)

__all__ = ['AtomicCheckpointHook']


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` that never leaves a broken checkpoint behind.

    Same options and file names as ``CheckpointHook``; what differs:

    - Every checkpoint (``epoch_N.pth``, ``best_*.pth``) is written to ``NAME.tmp`` in the
      same folder and renamed into place, and ``last_checkpoint`` is replaced atomically
      after its file is complete. mmengine rewrites ``epoch_N.pth`` after validation when
      the best score improves (to store the new best in the message hub); a kill during
      that rewrite now leaves the previous complete file.
    - A new best checkpoint is written before the previous best is removed, and the
      oldest numbered checkpoint (``max_keep_ckpts``) is removed only after the new one is
      complete, so a kill at any moment leaves a best and a latest checkpoint.
    - Temporary files of a killed save are removed (with a warning) before training.
    - Auto-resume (``resume=True`` without a path, ``tools/train.py --resume``) loads the
      file ``last_checkpoint`` names when it is complete, else the file of that name in
      the checkpoint folder (a moved work_dir), else the newest complete ``epoch_N.pth`` /
      ``iter_N.pth`` (with a warning each time; no silent restart from epoch 1). A given
      resume path (``--resume PATH``) that is missing or broken is an error naming it.
      The best-checkpoint paths a resumed run restores follow a moved or copied work_dir
      (a later best never removes a file in the original folder).

    Non-local storage (``backend_args``) is written as mmengine does.
    """

    # ------------------------------------------------------------------ resume choice
    def _ckpt_dir(self, runner) -> str:
        """The checkpoint folder, as ``CheckpointHook.before_train`` will set it."""
        out_dir = self.out_dir or runner.work_dir
        if out_dir != runner.work_dir:
            out_dir = osp.join(out_dir, osp.basename(runner.work_dir.rstrip(osp.sep)))
        return out_dir

    def before_run(self, runner) -> None:
        """Choose (auto) or check (given path) the checkpoint to resume from."""
        if not getattr(runner, '_resume', False) or getattr(runner, '_has_loaded', False):
            return
        given = runner._load_from
        if given is None:
            path = find_resume_checkpoint(runner.work_dir, self._ckpt_dir(runner),
                                          self.filename_tmpl, warn=runner.logger.warning)
            if path is not None:
                runner._load_from = path  # mmengine resumes from a given path
            return
        if '://' in str(given):  # URLs and other backends: mmengine reports problems
            return
        problem = checkpoint_problem(given)
        if problem is not None:
            raise IncompleteCheckpointError(
                f'--resume / resume=True with load_from="{given}": the file {problem}. '
                'Give a complete checkpoint, or run tools/train.py --resume without a '
                'path to resume from the newest complete checkpoint of the work_dir.')

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process() and osp.isdir(self.out_dir):
            remove_stale_tmp_files(self.out_dir, runner.work_dir, warn=runner.logger.warning)
        self._relocate_best_paths(runner)

    def _relocate_best_paths(self, runner) -> None:
        """Best-checkpoint paths of a resumed run that point into another folder (the
        work_dir was moved or copied): the file of that name here is the run's best, and
        a later best must not remove a file in the other folder."""
        if self.save_best is None:
            return

        def moved(path):
            if path and osp.dirname(osp.abspath(path)) != osp.abspath(self.out_dir):
                here = osp.join(self.out_dir, osp.basename(path))
                if osp.isfile(here):
                    return here
            return None

        if len(self.key_indicators) == 1:
            here = moved(self.best_ckpt_path)
            if here:
                self.best_ckpt_path = here
                runner.message_hub.update_info('best_ckpt', here)
        else:
            for key, path in self.best_ckpt_path_dict.items():
                here = moved(path)
                if here:
                    self.best_ckpt_path_dict[key] = here
                    runner.message_hub.update_info(f'best_ckpt_{key}', here)

    # ------------------------------------------------------------------ saving
    def _save_atomic(self, runner, filename: str, **kwargs) -> None:
        save_checkpoint_atomic(
            runner, self.out_dir, filename, file_backend=self.file_backend,
            file_client_args=self.file_client_args, backend_args=self.backend_args, **kwargs)

    def _remove(self, runner, path: str) -> bool:
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
            return True
        if self.file_backend.isdir(path):  # checkpoints saved by deepspeed are folders
            self.file_backend.rmtree(path)
            return True
        return False

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        """As mmengine's, but the oldest checkpoint goes only after the new one is
        complete, and ``last_checkpoint`` is replaced atomically after that."""
        drop = None
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids
                                            and self.keep_ckpt_ids[-1] == step):
            if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
                drop = self.keep_ckpt_ids.popleft()
            self.keep_ckpt_ids.append(step)
            runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

        ckpt_filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        self._save_atomic(
            runner, ckpt_filename, save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=dict(meta),
            by_epoch=self.by_epoch, **self.args)

        if not is_main_process():
            return
        write_text_atomic(osp.join(runner.work_dir, LAST_CHECKPOINT), self.last_ckpt)
        if drop is not None and drop != step:
            self._remove(runner, self.file_backend.join_path(
                self.out_dir, self.filename_tmpl.format(drop)))

    def _save_best_checkpoint(self, runner, metrics) -> None:
        """As mmengine's, but the new best is complete before the previous one is removed
        (and the latest checkpoint, re-saved to record the new best, is replaced
        atomically)."""
        if not self.save_best:
            return
        if self.by_epoch:
            ckpt_filename = self.filename_tmpl.format(runner.epoch)
            cur_type, cur_time = 'epoch', runner.epoch
        else:
            ckpt_filename = self.filename_tmpl.format(runner.iter)
            cur_type, cur_time = 'iter', runner.iter
        meta = dict(epoch=runner.epoch, iter=runner.iter)
        if 'auto' in self.key_indicators:
            self._init_rule(self.rules, [list(metrics.keys())[0]])

        updated, superseded = False, []
        single = len(self.key_indicators) == 1
        for key_indicator, rule in zip(self.key_indicators, self.rules):
            key_score = metrics[key_indicator]
            if single:
                best_score_key, best_ckpt_key = 'best_score', 'best_ckpt'
                old_path = self.best_ckpt_path
            else:
                best_score_key = f'best_score_{key_indicator}'
                best_ckpt_key = f'best_ckpt_{key_indicator}'
                old_path = self.best_ckpt_path_dict[key_indicator]
            best_score = runner.message_hub.get_info(best_score_key,
                                                     self.init_value_map[rule])
            if key_score is None or not self.is_better_than[key_indicator](key_score,
                                                                            best_score):
                continue
            updated = True
            runner.message_hub.update_info(best_score_key, key_score)
            best_ckpt_name = f'best_{key_indicator}_{ckpt_filename}'.replace('/', '_')
            new_path = self.file_backend.join_path(self.out_dir, best_ckpt_name)
            if single:
                self.best_ckpt_path = new_path
            else:
                self.best_ckpt_path_dict[key_indicator] = new_path
            runner.message_hub.update_info(best_ckpt_key, new_path)
            self._save_atomic(runner, best_ckpt_name, save_optimizer=False,
                              save_param_scheduler=False, meta=dict(meta), by_epoch=False)
            runner.logger.info(
                f'The best checkpoint with {key_score:0.4f} {key_indicator} at {cur_time} '
                f'{cur_type} is saved to {best_ckpt_name}.')
            if old_path and old_path != new_path:
                superseded.append(old_path)

        # the latest checkpoint again, so that its message hub records the new best
        # (mmengine does this too; here it replaces the file atomically)
        if updated and self.last_ckpt is not None:
            self._save_checkpoint_with_step(runner, cur_time, meta)
        if is_main_process():
            for path in superseded:
                if self._remove(runner, path):
                    runner.logger.info(f'The previous best checkpoint {path} is removed')
