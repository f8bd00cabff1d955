"""Registries of dira_mm, children of mmengine's root registries.

Every config ``type='...'`` string resolves in the ``dira_mm`` scope first and then in
mmengine's. ``locations`` makes a registry import the modules that register into it,
so no manual import is needed before building (mmpretrain's pattern).

Where each kind of component lives (all are ``MODELS`` children, as in mmpretrain; the
folder says what a component is):

- backbones ``dira_mm.models.backbones``, SSL algorithms ``dira_mm.models.algorithms``,
  necks/projectors ``dira_mm.models.necks``, heads (contrastive, restorative)
  ``dira_mm.models.heads``, discriminators ``dira_mm.models.discriminators``,
  losses ``dira_mm.models.losses``.
- hooks ``dira_mm.engine.hooks``; datasets ``dira_mm.datasets``; transforms
  ``dira_mm.datasets.transforms``.
"""
from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import \
    RUNNER_CONSTRUCTORS as MMENGINE_RUNNER_CONSTRUCTORS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import \
    WEIGHT_INITIALIZERS as MMENGINE_WEIGHT_INITIALIZERS
from mmengine.registry import Registry

__all__ = [
    'RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'LOG_PROCESSORS',
    'OPTIMIZERS', 'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
    'PARAM_SCHEDULERS', 'DATASETS', 'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS',
    'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'TASK_UTILS', 'METRICS',
    'EVALUATORS', 'VISUALIZERS', 'VISBACKENDS', 'FUNCTIONS', 'BACKBONES',
    'ALGORITHMS', 'NECKS', 'HEADS', 'DISCRIMINATORS', 'LOSSES'
]

_ENGINE = ['dira_mm.engine']

RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, locations=_ENGINE)
RUNNER_CONSTRUCTORS = Registry(
    'runner constructor', parent=MMENGINE_RUNNER_CONSTRUCTORS,
    locations=_ENGINE)
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, locations=_ENGINE)
HOOKS = Registry(
    'hook', parent=MMENGINE_HOOKS, locations=['dira_mm.engine.hooks'])
LOG_PROCESSORS = Registry(
    'log processor', parent=MMENGINE_LOG_PROCESSORS, locations=_ENGINE)
OPTIMIZERS = Registry(
    'optimizer', parent=MMENGINE_OPTIMIZERS,
    locations=['dira_mm.engine.optimizers'])
OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=MMENGINE_OPTIM_WRAPPERS,
    locations=['dira_mm.engine.optimizers'])
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor', parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    locations=['dira_mm.engine.optimizers'])
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS,
    locations=['dira_mm.engine.optimizers'])

DATASETS = Registry(
    'dataset', parent=MMENGINE_DATASETS, locations=['dira_mm.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMENGINE_DATA_SAMPLERS,
    locations=['dira_mm.datasets'])
TRANSFORMS = Registry(
    'transform', parent=MMENGINE_TRANSFORMS,
    locations=['dira_mm.datasets.transforms'])

MODELS = Registry('model', parent=MMENGINE_MODELS, locations=['dira_mm.models'])
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMENGINE_MODEL_WRAPPERS,
    locations=['dira_mm.models'])
WEIGHT_INITIALIZERS = Registry(
    'weight initializer', parent=MMENGINE_WEIGHT_INITIALIZERS,
    locations=['dira_mm.models'])
TASK_UTILS = Registry(
    'task util', parent=MMENGINE_TASK_UTILS, locations=['dira_mm.models'])

METRICS = Registry(
    'metric', parent=MMENGINE_METRICS, locations=['dira_mm.evaluation'])
EVALUATORS = Registry(
    'evaluator', parent=MMENGINE_EVALUATOR, locations=['dira_mm.evaluation'])

# mmengine's visualizer and backends (local, TensorBoard) are used as they are.
VISUALIZERS = Registry('visualizer', parent=MMENGINE_VISUALIZERS)
VISBACKENDS = Registry('vis_backend', parent=MMENGINE_VISBACKENDS)
FUNCTIONS = Registry(
    'function', parent=MMENGINE_FUNCTIONS, locations=['dira_mm.datasets'])

# Named views of MODELS: one obvious home per kind of component. They are the
# same registry object, so ``BACKBONES.build`` and ``MODELS.build`` agree and a
# config only ever writes ``type='Name'``.
BACKBONES = MODELS
ALGORITHMS = MODELS
NECKS = MODELS
HEADS = MODELS
DISCRIMINATORS = MODELS
LOSSES = MODELS
