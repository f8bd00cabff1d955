"""Config checks before the Runner is built, so mistakes stop with the key named.

mmengine finds many config mistakes late or never: a ``type`` typo is a bare ``KeyError``
after the environment dump, a misspelled top-level key (``trian_cfg``) or hook option
(``max_keep_ckpt``) is ignored or crashes after a full epoch, and a warm-up longer than a
short smoke-test run dies inside the scheduler ("end should be larger than begin").
:func:`preflight` checks the config right after the command line is applied, fits the
parameter schedulers to the run (with a warning per change) and adapts a CPU-only run
(gloo, no pinned memory). What needs the built dataloaders is checked by
:class:`~dira_mm.engine.hooks.PreflightHook`, which also silences mmengine's known-harmless
FileClient deprecation warnings in the run's logger.
"""
import difflib
import inspect
import logging
import warnings
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from mmengine.logging import print_log

__all__ = [
    'ConfigError', 'preflight', 'run_preflight', 'check_top_level_keys', 'check_types',
    'check_hook_options', 'check_loop_options', 'check_stage_hook', 'fit_param_schedulers',
    'adapt_to_device', 'drop_training_only_hooks', 'silence_known_warnings',
    'silence_idle_optimizer_warning', 'RUNNER_KEYS', 'train_length'
]

# Top-level keys mmengine (Runner.from_cfg, setup_env, wrap_model, train; Config) reads.
RUNNER_KEYS = (
    'model', 'work_dir', 'train_dataloader', 'val_dataloader', 'test_dataloader', 'train_cfg',
    'val_cfg', 'test_cfg', 'auto_scale_lr', 'optim_wrapper', 'param_scheduler',
    'val_evaluator', 'test_evaluator', 'default_hooks', 'custom_hooks', 'data_preprocessor',
    'load_from', 'resume', 'launcher', 'env_cfg', 'log_processor', 'log_level', 'visualizer',
    'default_scope', 'randomness', 'experiment_name', 'model_wrapper_cfg',
    'find_unused_parameters', 'compile', 'activation_checkpointing', 'efficient_conv_bn_eval',
    'sync_bn', 'runner_type', 'vis_backends', 'custom_imports',
    'load_from_strict')  # read by dira_mm's CheckedLoadHook

# The registry of a ``type`` follows from the nearest enclosing key (inherited downwards):
# the top-level key, then these keys at any depth.
_TOP_REGISTRY = {
    'model': 'MODELS', 'data_preprocessor': 'MODELS', 'default_hooks': 'HOOKS',
    'custom_hooks': 'HOOKS', 'optim_wrapper': 'OPTIM_WRAPPERS',
    'param_scheduler': 'PARAM_SCHEDULERS', 'train_cfg': 'LOOPS', 'val_cfg': 'LOOPS',
    'test_cfg': 'LOOPS', 'val_evaluator': 'METRICS', 'test_evaluator': 'METRICS',
    'visualizer': 'VISUALIZERS', 'vis_backends': 'VISBACKENDS',
    'log_processor': 'LOG_PROCESSORS', 'model_wrapper_cfg': 'MODEL_WRAPPERS',
}
_NESTED_REGISTRY = {
    'data_preprocessor': 'MODELS', 'init_cfg': 'WEIGHT_INITIALIZERS', 'dataset': 'DATASETS',
    'datasets': 'DATASETS', 'pipeline': 'TRANSFORMS', 'transforms': 'TRANSFORMS',
    'sampler': 'DATA_SAMPLERS', 'batch_sampler': 'DATA_SAMPLERS', 'collate_fn': 'FUNCTIONS',
    'optimizer': 'OPTIMIZERS', 'metrics': 'METRICS', 'vis_backends': 'VISBACKENDS',
}
_REGISTRY_NAMES = (
    'MODELS', 'DATASETS', 'TRANSFORMS', 'HOOKS', 'OPTIMIZERS', 'OPTIM_WRAPPERS',
    'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'LOOPS', 'METRICS', 'EVALUATORS',
    'DATA_SAMPLERS', 'FUNCTIONS', 'VISUALIZERS', 'VISBACKENDS', 'LOG_PROCESSORS',
    'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'TASK_UTILS', 'RUNNERS', 'RUNNER_CONSTRUCTORS')

# Arguments mmengine's CheckpointHook passes to Runner.save_checkpoint itself; the rest of
# Runner.save_checkpoint's parameters are what CheckpointHook's **kwargs may carry.
_CKPT_HOOK_PASSES = ('self', 'out_dir', 'filename', 'file_client_args', 'save_optimizer',
                     'save_param_scheduler', 'meta', 'by_epoch', 'backend_args')


class ConfigError(ValueError):
    """A config mistake found before training; the message names the keys to change."""


def _warn(message: str) -> None:
    print_log(message, logger='current', level=logging.WARNING)


def _info(message: str) -> None:
    print_log(message, logger='current', level=logging.INFO)


def _suggest(name: str, candidates: Sequence[str]) -> str:
    """``"; did you mean 'X'?"`` for the closest candidates (case-insensitive), or ''."""
    by_lower: Dict[str, str] = {}
    for c in candidates:
        by_lower.setdefault(c.lower(), c)
    if name.lower() in by_lower:  # only the case differs
        return f'; did you mean {by_lower[name.lower()]!r}?'
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    if not close:
        return ''
    # only the matches about as close as the best one
    best = difflib.SequenceMatcher(None, name.lower(), close[0]).ratio()
    close = [c for c in close
             if difflib.SequenceMatcher(None, name.lower(), c).ratio() >= best - 0.05]
    return '; did you mean ' + ' or '.join(repr(by_lower[c]) for c in close) + '?'


def check_top_level_keys(cfg: Mapping) -> List[str]:
    """Top-level keys that look like a misspelled Runner key (``trian_cfg``).

    Configs define their own variables (``data_root``, ``train_pipeline``, ...), so only a
    key that is a close match of a key the Runner reads, but not equal to it, is reported.
    """
    problems = []
    for key in cfg.keys():
        if key.startswith('_') or key in RUNNER_KEYS:
            continue
        close = difflib.get_close_matches(key, RUNNER_KEYS, n=1, cutoff=0.8)
        if close:
            problems.append(
                f'config key {key!r} is not read by the Runner; did you mean {close[0]}? '
                '(rename it if it is meant as a plain config variable)')
    return problems


def _registries() -> Dict[str, Any]:
    import mmengine.runner  # noqa: F401  (registers mmengine's own components)

    from dira_mm import registry
    return {name: getattr(registry, name) for name in _REGISTRY_NAMES}


def _registered_names(reg) -> List[str]:
    reg.import_from_location()
    names = []
    while reg is not None:
        names += list(reg.module_dict)
        reg = reg.parent
    return names


def _is_registered(reg, name: str) -> bool:
    try:
        return reg.get(name) is not None
    except Exception:  # e.g. an unknown scope 'foo.X'
        return False


def _walk_types(node: Any, path: str,
                reg_name: Optional[str]) -> Iterator[Tuple[str, str, Optional[str]]]:
    """``(key path, type name, registry name)`` of every string ``type`` under ``node``."""
    if isinstance(node, Mapping):
        t = node.get('type')
        if isinstance(t, str):
            yield f'{path}.type', t, reg_name
        for k, v in node.items():
            if k == 'type' or not isinstance(v, (Mapping, list, tuple)):
                continue
            child_reg = _NESTED_REGISTRY.get(k, reg_name)
            if isinstance(k, str) and k.endswith('pipeline'):
                child_reg = 'TRANSFORMS'
            yield from _walk_types(v, f'{path}.{k}', child_reg)
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _walk_types(v, f'{path}[{i}]', reg_name)


def check_types(cfg: Mapping) -> List[str]:
    """Every string ``type`` under the keys the Runner builds, checked against the registries.

    The registry follows from the nearest enclosing key (``model`` -> MODELS, ``dataset`` ->
    DATASETS, ``pipeline`` -> TRANSFORMS, ``optimizer`` -> OPTIMIZERS, ...); a name found in
    any other registry is accepted too (components may build from another registry).
    Classes and callables given as ``type`` are not checked.
    """
    regs = _registries()
    problems = []
    for top in RUNNER_KEYS:
        node = cfg.get(top)
        if node is None:
            continue
        if top == 'runner_type' and isinstance(node, str):
            entries = [('runner_type', node, 'RUNNERS')]
        else:
            entries = list(_walk_types(node, top, _TOP_REGISTRY.get(top)))
            constructor = node.get('constructor') if isinstance(node, Mapping) else None
            if top == 'optim_wrapper' and isinstance(constructor, str):
                entries.append(('optim_wrapper.constructor', constructor,
                                'OPTIM_WRAPPER_CONSTRUCTORS'))
        for key, name, reg_name in entries:
            primary = regs.get(reg_name) if reg_name else None
            if primary is not None and _is_registered(primary, name):
                continue
            if any(_is_registered(r, name) for r in regs.values()):
                continue
            where = reg_name or 'any registry'
            candidates = _registered_names(primary) if primary is not None else [
                n for r in regs.values() for n in _registered_names(r)]
            problems.append(f'config key {key}: {name!r} is not registered in {where}'
                            f'{_suggest(name, candidates)}')
    return problems


def _hook_options(hook_cls: type) -> Optional[set]:
    """The keyword options ``hook_cls(**cfg)`` accepts, or None when any is accepted."""
    from mmengine.hooks import CheckpointHook
    from mmengine.runner import Runner
    allowed = set()
    for klass in hook_cls.__mro__:
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        allowed |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                          p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return allowed - {'self'}
        if klass is CheckpointHook:  # its **kwargs go to Runner.save_checkpoint
            forwarded = set(inspect.signature(Runner.save_checkpoint).parameters)
            return (allowed | (forwarded - set(_CKPT_HOOK_PASSES))) - {'self'}
    return None


def _hook_cfgs(cfg: Mapping) -> Iterator[Tuple[str, Mapping]]:
    for name, hook in (cfg.get('default_hooks') or {}).items():
        if isinstance(hook, Mapping):
            yield f'default_hooks.{name}', hook
    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        if isinstance(hook, Mapping):
            yield f'custom_hooks[{i}]', hook


def _hook_class(hook: Mapping) -> Optional[type]:
    from dira_mm.registry import HOOKS
    t = hook.get('type')
    if isinstance(t, type):
        return t
    return HOOKS.get(t) if isinstance(t, str) and _is_registered(HOOKS, t) else None


def check_hook_options(cfg: Mapping) -> List[str]:
    """Options of ``default_hooks``/``custom_hooks`` that the hook class does not take.

    mmengine's CheckpointHook takes ``**kwargs`` and hands them to ``save_checkpoint`` at
    the first save, so ``max_keep_ckpt`` would crash after a whole epoch; it is named here.
    """
    problems = []
    for key, hook in _hook_cfgs(cfg):
        hook_cls = _hook_class(hook)
        if hook_cls is None:
            continue  # an unknown type is reported by check_types
        allowed = _hook_options(hook_cls)
        if allowed is None:
            continue
        for option in hook:
            if option in ('type', 'priority') or option in allowed:
                continue
            problems.append(f'config key {key}.{option}: {hook_cls.__name__} has no option '
                            f'{option!r}{_suggest(option, sorted(allowed))}')
    return problems


_LOOP_DEFAULTS = {'val_cfg': 'ValLoop', 'test_cfg': 'TestLoop'}


def check_loop_options(cfg: Mapping) -> List[str]:
    """Options of ``train_cfg``/``val_cfg``/``test_cfg`` that their loop does not take.

    mmengine builds the loops only when training starts, after the environment dump, so a
    ``max_epoch`` would otherwise end as a bare ``TypeError`` there.
    """
    from dira_mm.registry import LOOPS
    problems = []
    for key in ('train_cfg', 'val_cfg', 'test_cfg'):
        loop = cfg.get(key)
        if not isinstance(loop, Mapping):
            continue
        loop_type = loop.get('type')
        extra = set()
        if loop_type is None and key == 'train_cfg':
            loop_type = 'EpochBasedTrainLoop' if loop.get('by_epoch', True) else \
                'IterBasedTrainLoop'
            extra = {'by_epoch'}  # read by Runner.build_train_loop
        loop_type = loop_type or _LOOP_DEFAULTS[key]
        loop_cls = loop_type if isinstance(loop_type, type) else (
            LOOPS.get(loop_type) if _is_registered(LOOPS, loop_type) else None)
        allowed = _hook_options(loop_cls) if loop_cls is not None else None
        if allowed is None:
            continue  # an unknown type is reported by check_types
        allowed = (allowed | extra) - {'runner', 'dataloader', 'evaluator'}
        for option in loop:
            if option != 'type' and option not in allowed:
                problems.append(f'config key {key}.{option}: {loop_cls.__name__} has no option '
                                f'{option!r}{_suggest(option, sorted(allowed))}')
    return problems


def train_length(cfg: Mapping) -> Tuple[Optional[str], Optional[int]]:
    """``('max_epochs', n)`` or ``('max_iters', n)`` of ``train_cfg``, else ``(None, None)``."""
    train_cfg = cfg.get('train_cfg') or {}
    loop = train_cfg.get('type', '')
    loop = getattr(loop, '__name__', loop)
    if 'max_epochs' in train_cfg and loop != 'IterBasedTrainLoop':
        return 'max_epochs', int(train_cfg['max_epochs'])
    if 'max_iters' in train_cfg:
        return 'max_iters', int(train_cfg['max_iters'])
    return None, None


# mmengine's (torch's) warning when a scheduler steps before its optimizer ever has.
_IDLE_OPTIMIZER_WARNING = r'Detected call of `scheduler\.step\(\)` before `optimizer\.step\(\)`'


def silence_idle_optimizer_warning() -> None:
    """Ignore the "scheduler.step() before optimizer.step()" warning of mmengine's schedulers.

    In a staged DiRA run the discriminator's optimizer does not step during the warm-up, by
    design, while its (constant) schedule does; mmengine then warns at the first epoch end.
    """
    warnings.filterwarnings('ignore', message=_IDLE_OPTIMIZER_WARNING, category=UserWarning,
                            module=r'mmengine\.optim\.scheduler')


# torch's FutureWarning for the `broadcast_buffers` argument that mmengine 0.10.7's DDP
# wrappers always pass (False, which is what dira_mm wants); one line per process and wrapper.
_BROADCAST_BUFFERS_WARNING = r'`broadcast_buffers` is deprecated'


def silence_known_harmless_warnings() -> None:
    """Ignore warnings a user can do nothing about and that change nothing: torch's
    deprecation of the ``broadcast_buffers`` argument mmengine's DDP wrappers pass."""
    warnings.filterwarnings('ignore', message=_BROADCAST_BUFFERS_WARNING,
                            category=FutureWarning)


def check_stage_hook(cfg: Mapping) -> None:
    """Warn when a DiRAStageHook would never turn the adversary on within the run.

    A warm-up stage (``adversarial_begin > 0``) also silences the idle-discriminator
    scheduler warning (:func:`silence_idle_optimizer_warning`).
    """
    from dira_mm.engine.hooks import DiRAStageHook
    unit, length = train_length(cfg)
    for key, hook in _hook_cfgs(cfg):
        hook_cls = _hook_class(hook)
        if hook_cls is None or not issubclass(hook_cls, DiRAStageHook):
            continue
        if hook.get('adversarial_begin', 0) > 0:
            silence_idle_optimizer_warning()
        by_epoch = hook.get('by_epoch', True)
        if (unit == 'max_epochs') != bool(by_epoch) or length is None:
            continue
        begin = hook.get('adversarial_begin')
        if begin is not None and begin >= length:
            _warn(f'{key}.adversarial_begin={begin} is not before the end of the run '
                  f'(train_cfg.{unit}={length}): the adversarial stage never starts, only the '
                  'warm-up (discriminative + restorative) trains. Lower '
                  f'{key}.adversarial_begin to train the adversary in this run.')


def _scheduler_lists(sched: Any) -> Iterator[Tuple[str, list]]:
    """``(key, list of scheduler cfgs)`` of ``param_scheduler`` (one list or one per optimizer)."""
    if isinstance(sched, Mapping) and 'type' not in sched:
        for name, sub in sched.items():
            yield f'param_scheduler.{name}', sub
    else:
        yield 'param_scheduler', sched


def fit_param_schedulers(cfg: Any) -> List[str]:
    """Fit ``param_scheduler`` entries to a run shorter than they are (in place).

    A scheduler whose ``begin`` is not before the end of the run would never act (and
    mmengine refuses it: "end should be larger than begin"), so it is removed; one whose
    ``end`` is past the end of the run (a warm-up longer than a smoke test) ends with the
    run. Each change is logged as a warning with the old and new values. Entries counted in
    the other unit than the loop (``by_epoch=False`` in an epoch-based loop) are left as
    they are. Returns the problems that cannot be fixed (``end <= begin`` in the config).
    """
    sched = cfg.get('param_scheduler')
    unit, length = train_length(cfg)
    if sched is None:
        return []
    problems = []
    fitted = {}
    for key, entries in _scheduler_lists(sched):
        single = isinstance(entries, Mapping)
        entries = [entries] if single else list(entries)
        kept = []
        for i, s in enumerate(entries):
            if not isinstance(s, Mapping):
                kept.append(s)
                continue
            name = key if single else f'{key}[{i}]'
            kind = s.get('type')
            kind = getattr(kind, '__name__', kind)
            begin, end = s.get('begin', 0), s.get('end')
            if end is not None and end <= begin:
                problems.append(f'config key {name}: {kind} has end={end} <= begin={begin}; '
                                'set end after begin')
                kept.append(s)
                continue
            same_unit = (unit == 'max_epochs') == bool(s.get('by_epoch', True))
            if length is None or not same_unit:
                kept.append(s)
            elif begin >= length:
                _warn(f'{name} ({kind}): begin={begin} is not before the end of the run '
                      f'(train_cfg.{unit}={length}), so it would never act; removed for this '
                      f'run. Set train_cfg.{unit} > {begin} to keep it.')
            elif end is not None and end > length:
                _warn(f'{name} ({kind}): end={end} is past the end of the run '
                      f'(train_cfg.{unit}={length}); clamped to end={length}.')
                s = type(s)(s)
                s['end'] = length
                kept.append(s)
            else:
                kept.append(s)
        fitted[key] = (kept[0] if kept else None) if single else kept
    if 'param_scheduler' in fitted:
        cfg['param_scheduler'] = fitted['param_scheduler']
    else:
        for key, value in fitted.items():
            cfg['param_scheduler'][key.split('.', 1)[1]] = value
    return problems


_DATALOADER_KEYS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def adapt_to_device(cfg: Any, cuda: Optional[bool] = None) -> None:
    """Make a run without CUDA say and use what it runs on.

    mmengine's default ``dist_cfg.backend='nccl'`` is logged (and used for DDP) although a
    CPU run can only use gloo; pinned memory needs an accelerator and makes the DataLoader
    warn at every epoch. Both are switched off here, with an info line.
    """
    if cuda is None:
        import torch
        cuda = torch.cuda.is_available()
    if cuda:
        return
    env_cfg = cfg.get('env_cfg')
    dist_cfg = env_cfg.get('dist_cfg') if env_cfg is not None else None
    if dist_cfg is not None and dist_cfg.get('backend') == 'nccl':
        dist_cfg['backend'] = 'gloo'
        _info('no CUDA: the run uses the CPU, env_cfg.dist_cfg.backend nccl -> gloo')
    for key in _DATALOADER_KEYS:
        loader = cfg.get(key)
        if isinstance(loader, Mapping) and loader.get('pin_memory'):
            loader['pin_memory'] = False
            _info(f'no CUDA: {key}.pin_memory True -> False')


# mmengine 0.10.7's own LoggerHook and CheckpointHook create a FileClient in every run and
# it logs these deprecation warnings (print_log, not the warnings module); nobody can act on
# them from a config.
_HARMLESS_LOG_MESSAGES = (
    '"FileClient" will be deprecated in future.',
    '"HardDiskBackend" is the alias of "LocalBackend"',
)


class _HarmlessMessageFilter(logging.Filter):
    """Drops the known-harmless mmengine log records of ``_HARMLESS_LOG_MESSAGES``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (isinstance(record.msg, str)
                    and record.msg.startswith(_HARMLESS_LOG_MESSAGES))


def silence_known_warnings(logger: logging.Logger) -> None:
    """Drop mmengine's FileClient deprecation warnings from ``logger`` (the run's logger)."""
    if not any(isinstance(f, _HarmlessMessageFilter) for f in logger.filters):
        logger.addFilter(_HarmlessMessageFilter())


#: custom hooks that act in training only and build the training loop in ``before_run``
#: (mmengine's EarlyStoppingHook asserts on ``runner.train_loop``, which builds the loop and
#: its dataloader): an evaluation run would read, and need, the whole training set
_TRAINING_ONLY_HOOKS = ('EarlyStoppingHook', )


def drop_training_only_hooks(cfg: Any) -> None:
    """Remove the training-only custom hooks (``_TRAINING_ONLY_HOOKS``) from an evaluation
    config (in place), each with an info line. ``tools/test.py`` on a benchmark config
    (whose ``EarlyStoppingHook`` watches the validation metric) then needs the test set only."""
    hooks = cfg.get('custom_hooks')
    if not hooks:
        return
    kept = []
    for hook in hooks:
        kind = hook.get('type') if isinstance(hook, Mapping) else type(hook)
        kind = getattr(kind, '__name__', kind)
        if isinstance(kind, str) and kind.split('.')[-1] in _TRAINING_ONLY_HOOKS:
            _info(f'evaluation: custom_hooks {kind} dropped (it acts in training only and '
                  'would build the training set)')
        else:
            kept.append(hook)
    cfg['custom_hooks'] = kept


def preflight(cfg: Any, training: bool = True) -> None:
    """Check ``cfg`` before the Runner is built; fit it to the run and the device.

    Args:
        cfg: the mmengine ``Config`` after the command-line options (changed in place).
        training: also fit the parameter schedulers and check the DiRA stage against
            ``train_cfg`` (``tools/train.py``); ``False`` for evaluation, which drops the
            training-only custom hooks instead (:func:`drop_training_only_hooks`).

    Raises:
        ConfigError: every mistake found, one per line, each naming its config key.
    """
    problems = (check_top_level_keys(cfg) + check_types(cfg) + check_hook_options(cfg) +
                check_loop_options(cfg))
    if training:
        problems += fit_param_schedulers(cfg)
    if problems:
        raise ConfigError(f'{len(problems)} problem(s) in config '
                          f'{getattr(cfg, "filename", None)}:\n  ' + '\n  '.join(problems))
    if training:
        check_stage_hook(cfg)
    else:
        drop_training_only_hooks(cfg)
    adapt_to_device(cfg)
    silence_known_harmless_warnings()


def run_preflight(cfg: Any, training: bool = True) -> None:
    """:func:`preflight` for the command-line tools: a mistake exits with its message."""
    try:
        preflight(cfg, training=training)
    except ConfigError as error:
        raise SystemExit(f'error: {error}') from None
