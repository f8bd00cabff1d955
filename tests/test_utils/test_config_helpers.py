"""dira_mm.utils.config: the dataset inside wrappers, and one Runner per run in a process."""
from mmengine.config import Config, ConfigDict

from dira_mm.utils import isolate_run, iter_dataset_cfgs, leaf_dataset_cfg


def test_dataset_cfgs_through_wrappers():
    leaf = dict(type='ChestXray14Dataset', data_root='d', pipeline=[], seed=0)
    cfg = ConfigDict(type='LabelFractionDataset', fraction=0.5,
                     dataset=dict(type='ClassSubsetDataset', classes=('A', ), dataset=leaf))
    assert [d['type'] for d in iter_dataset_cfgs(cfg)] == [
        'LabelFractionDataset', 'ClassSubsetDataset', 'ChestXray14Dataset']
    found = leaf_dataset_cfg(cfg)
    found.seed = 7  # the same object: tools edit the config in place
    assert cfg.dataset.dataset.seed == 7
    plain = ConfigDict(type='ChestPhantomDataset', num_samples=3)  # no pipeline, no wrapper
    assert leaf_dataset_cfg(plain) is plain


def test_isolate_run_gives_each_run_its_own_names():
    names = set()
    for _ in range(3):
        cfg = Config(dict(visualizer=dict(type='Visualizer', name='vis'), launcher='pytorch',
                          load_from='x.pth', resume=True))
        isolate_run(cfg, 'trial')
        assert cfg.experiment_name.startswith('trial_')
        assert cfg.visualizer.name == f'visualizer_{cfg.experiment_name}'
        assert (cfg.launcher, cfg.load_from, cfg.resume) == ('none', None, False)
        names.add(cfg.experiment_name)
    assert len(names) == 3
