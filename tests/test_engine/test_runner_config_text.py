"""DiraRunner formats its config text once per content (mmengine formats it at every log,
dump and checkpoint), and the text is the one mmengine would give."""
import copy

import mmengine.config.config as mm_config
from mmengine.config import Config
from torch import nn

from dira_mm.engine.runner import DiraRunner
from dira_mm.engine.runner.runner import TextCachedConfig
from dira_mm.utils import isolate_run


def _count_formats(monkeypatch):
    calls = []
    real = mm_config.FormatCode

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(mm_config, 'FormatCode', counting)
    return calls


def test_text_is_formatted_once_per_content(monkeypatch):
    cfg = Config(dict(model=dict(type='Toy', depth=3), train_cfg=dict(max_epochs=2)))
    expected = cfg.pretty_text
    cached = copy.deepcopy(cfg)
    object.__setattr__(cached, '__class__', TextCachedConfig)
    calls = _count_formats(monkeypatch)
    assert cached.pretty_text == expected and cached.pretty_text == expected
    assert len(calls) == 1
    cached.train_cfg.max_epochs = 7  # a change of content is formatted again
    assert 'max_epochs=7' in cached.pretty_text and len(calls) == 2
    assert cached.pretty_text == copy.deepcopy(cached).pretty_text and len(calls) == 2


def test_runner_cfg_is_text_cached(tmp_path, monkeypatch):
    cfg = Config(dict(model=dict(type='Toy'), work_dir=str(tmp_path), visualizer=dict(
        type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])))
    isolate_run(cfg, 'text_cached')
    calls = _count_formats(monkeypatch)
    runner = DiraRunner(model=nn.Linear(1, 1), work_dir=str(tmp_path), cfg=cfg,
                        visualizer=cfg.visualizer, experiment_name=cfg.experiment_name,
                        default_scope='dira_mm')  # mmengine's default would stay current
    assert type(runner.cfg) is TextCachedConfig
    runner.cfg.pretty_text, runner.cfg.pretty_text
    assert len(calls) == 1  # __init__'s dumps and the two reads above share one format
