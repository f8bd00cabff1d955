"""The classification benchmark configs keep the benchmark's protocol (BenchmarkTransferLearning
as DiRA reports it): 224 px, ten-crop test, BCE, Adam 2e-4, batch 32, plateau 0.5/5, patience 10."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from dira_mm.utils import leaf_dataset_cfg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS_DIR = osp.join(REPO, 'configs', 'benchmarks', 'classification')
CONFIGS = sorted(glob.glob(osp.join(CLS_DIR, '*.py')))


_leaf = leaf_dataset_cfg


def _types(pipeline):
    return [t['type'] for t in pipeline]


def test_the_matrix_exists():
    names = {osp.basename(p) for p in CONFIGS}
    for data in ('chestxray14', 'chexpert'):
        for mode in ('finetune', 'linear-probe'):
            assert f'resnet50_{mode}_1xb32-adam-plateau-1000e_{data}.py' in names
    assert {'resnet18_finetune_1xb16-adam-10e_demo.py',
            'resnet18_linear-probe_1xb16-adam-10e_demo.py'} <= names


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_benchmark_protocol(path):
    cfg = Config.fromfile(path, lazy_import=False)
    demo = path.endswith('_demo.py')
    size, resize = (128, 146) if demo else (224, 256)
    model = cfg.model
    assert model.type == 'MultiLabelClassifier' and model.head_init_std == 0.01
    assert model.loss.type == 'MaskedBCEWithLogitsLoss'
    assert model.linear_probe == ('linear-probe' in path)
    assert model.backbone.encoder_name == ('resnet18' if demo else 'resnet50')
    assert model.num_classes == (3 if demo else 14)
    assert model.data_preprocessor.mean == [0.485, 0.456, 0.406]
    assert model.data_preprocessor.std == [0.229, 0.224, 0.225]
    # data: label fractions from a seeded wrapper; RRC + flip + rotation(7); resize + crops
    train = cfg.train_dataloader
    assert train.batch_size == (16 if demo else 32)
    assert (train.dataset.type, train.dataset.fraction, train.dataset.seed) == \
        ('LabelFractionDataset', 1.0, 99)
    train_pipeline = _leaf(train.dataset).pipeline
    assert _types(train_pipeline) == ['LoadMedicalImage', 'RandomResizedCrop', 'RandomFlip',
                                      'RandomRotation', 'PackClsInputs']
    assert train_pipeline[1].size == size and tuple(train_pipeline[1].scale) == (0.08, 1.0)
    assert train_pipeline[3].degrees == 7
    val_pipeline = _leaf(cfg.val_dataloader.dataset).pipeline
    test_pipeline = _leaf(cfg.test_dataloader.dataset).pipeline
    assert _types(val_pipeline)[1:3] == ['Resize', 'CenterCrop']
    assert _types(test_pipeline)[1:3] == ['Resize', 'TenCrop']
    assert val_pipeline[1].size == test_pipeline[1].size == resize
    assert val_pipeline[2].size == test_pipeline[2].size == size
    assert cfg.val_evaluator.type == cfg.test_evaluator.type == 'MultiLabelAUC'
    if 'chexpert' in path:
        assert len(cfg.test_evaluator.eval_classes) == 5
    # schedule: Adam 2e-4, plateau (0.5, 5) and early stopping (10) on the val AUC
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay) == ('Adam', 2e-4, 0.0)
    sched = cfg.param_scheduler
    assert (sched.type, sched.monitor, sched.rule, sched.factor, sched.patience) == \
        ('ReduceOnPlateauLR', 'auc', 'greater', 0.5, 5)
    assert cfg.train_cfg.val_interval == 1
    stop = [h for h in cfg.custom_hooks if h.type == 'EarlyStoppingHook']
    assert len(stop) == 1 and (stop[0].monitor, stop[0].rule, stop[0].patience) == \
        ('auc', 'greater', 10)
    ckpt = cfg.default_hooks.checkpoint
    assert (ckpt.save_best, ckpt.rule) == ('auc', 'greater')
    assert cfg.default_hooks.safe_checkpoint.type == 'SafeCheckpointHook'
