"""AMP on CPU: bfloat16 autocast in both optimizer wrappers of DiRA's two-player step."""
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.logging import MMLogger
from mmengine.runner import Runner
from torch import nn

from dira_mm.engine.optimizers import AutoAmpOptimWrapper
from dira_mm.models.algorithms.moco import _similarities as moco_similarities
from dira_mm.models.heads import CrossCorrelationHead
from dira_mm.models.losses import CosineSimilarityLoss, LSGANLoss
from dira_mm.models.utils import unwrap
from helpers import e2e_helpers, load_tool

ROOT = Path(__file__).resolve().parents[2]

# The bf16 run's per-iteration losses vs the fp32 run from the same seed, as a relative
# gap |amp - fp32| / |fp32|. Measured on this tiny DiRA-MoCo (4 iterations, both
# optimizers, 2-core x86 CPU): total loss 0.58 % at the first step (same weights: the
# forward's bfloat16 rounding alone, 8-bit mantissa) and at most 0.62 % later; loss_d at
# most 0.24 %. With the MoCo logits in bf16 (losses in float32) the total drifted to 3.5 % by
# step 4. The bound leaves ~5x margin for other CPUs' bf16 kernels.
LOSS_RTOL = 0.03
# A gap this small would mean autocast never ran (identical fp32 arithmetic gives 0).
MIN_GAP = 1e-6


e2e = e2e_helpers()
train_tool = load_tool('train')


class _Recorder(Hook):
    """Per-iteration losses and the dtypes the first encoder and discriminator convs
    compute in during training iterations (validation runs in float32)."""

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self.losses, self.loss_d, self.conv_dtypes, self.disc_dtypes = [], [], set(), set()
        self.in_train_iter = False
        self.input_dtypes = set()

    def _record(self, dtypes: set):
        def hook(module, inputs, output):
            if self.in_train_iter:
                dtypes.add(output.dtype)
        return hook

    def before_train(self, runner) -> None:
        model = unwrap(runner.model)
        conv = next(m for m in model.ssl.backbone.modules() if isinstance(m, nn.Conv2d))
        disc = next(m for m in model.discriminator.modules() if isinstance(m, nn.Conv2d))
        conv.register_forward_hook(self._record(self.conv_dtypes))
        disc.register_forward_hook(self._record(self.disc_dtypes))
        # the data preprocessor runs inside the generator's autocast context
        model.data_preprocessor.register_forward_hook(
            lambda m, i, out: self.input_dtypes.update(
                {v.dtype for v in out['inputs']} |
                {ds.target.dtype for ds in out['data_samples']}) if self.in_train_iter
            else None)

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self.in_train_iter = True

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.in_train_iter = False
        self.losses.append(float(torch.as_tensor(outputs['loss']).detach()))
        self.loss_d.append(float(torch.as_tensor(outputs['loss_d']).detach()))


def _amp(cfg) -> None:
    train_tool.enable_amp(cfg)


def _run(data_root: str, work_dir: str, amp: bool, epochs: int = 1, resume: str = None):
    cfg = e2e.tiny_config(data_root, work_dir, mode='dira', epochs=epochs,
                          adversarial_begin=0)
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h['type'] != 'ReconstructionVisHook']
    cfg.optim_wrapper.generator.clip_grad = dict(max_norm=1.0)
    if amp:
        _amp(cfg)
    if resume:
        cfg.resume, cfg.load_from = True, resume
    runner = Runner.from_cfg(cfg)
    recorder = _Recorder()
    runner.register_hook(recorder)
    runner.train()
    return runner, recorder


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """fp32 and bf16-AMP runs of the tiny DiRA (adversary on: both wrappers), one seed."""
    from dira_mm.datasets.phantom import make_demo_dataset
    tmp = tmp_path_factory.mktemp('amp')
    data = str(tmp / 'data')
    make_demo_dataset(data, num_train=8, num_val=4, size=80, seed=0)
    fp32 = _run(data, str(tmp / 'fp32'), amp=False, epochs=2)
    amp = _run(data, str(tmp / 'amp'), amp=True, epochs=2)
    return dict(data=data, fp32=fp32, amp=amp, tmp=tmp)


def test_both_wrappers_are_cpu_bf16(runs):
    runner, _ = runs['amp']
    for name in ('generator', 'discriminator'):
        wrapper = runner.optim_wrapper[name]
        assert isinstance(wrapper, AutoAmpOptimWrapper)
        assert (wrapper.device_type, wrapper.cast_dtype) == ('cpu', torch.bfloat16)
        assert wrapper.loss_scaler is None
    fp32_runner, _ = runs['fp32']
    assert not isinstance(fp32_runner.optim_wrapper['generator'], AutoAmpOptimWrapper)


def test_autocast_active_in_generator_and_discriminator(runs):
    _, rec = runs['amp']
    assert rec.conv_dtypes == {torch.bfloat16}
    # the discriminator runs in the generator step (frozen) and in its own step
    assert rec.disc_dtypes == {torch.bfloat16}
    # views and restoration targets leave the preprocessor in float32 (autocast leaves the
    # uint8 -> float conversion alone), so the MSE target is never rounded to bf16
    assert rec.input_dtypes == {torch.float32}
    _, rec32 = runs['fp32']
    assert rec32.conv_dtypes == {torch.float32} and rec32.disc_dtypes == {torch.float32}


def test_amp_losses_within_tolerance_of_fp32(runs):
    _, rec32 = runs['fp32']
    _, rec16 = runs['amp']
    assert len(rec32.losses) == len(rec16.losses) == 4  # 8 images / batch 4, 2 epochs
    gaps = [abs(a - b) / abs(b) for a, b in zip(rec16.losses, rec32.losses)]
    assert max(gaps) < LOSS_RTOL, gaps
    assert max(gaps) > MIN_GAP, 'the AMP run computed exactly the fp32 losses: no autocast'
    d_gaps = [abs(a - b) / abs(b) for a, b in zip(rec16.loss_d, rec32.loss_d)]
    assert max(d_gaps) < LOSS_RTOL, d_gaps
    # the losses themselves are float32 (computed outside autocast)
    assert all(torch.isfinite(torch.tensor(rec16.losses)))


def test_checkpoint_and_resume_from_amp(runs, tmp_path):
    runner, rec = runs['amp']
    work = Path(runner.work_dir)
    ckpt = torch.load(work / 'epoch_1.pth', map_location='cpu', weights_only=False)
    optim = ckpt['optimizer']
    assert set(optim) == {'generator', 'discriminator'}
    assert all('loss_scaler' not in optim[k] for k in optim)
    # resume the AMP run at epoch 1: the second epoch repeats the uninterrupted one
    start = tmp_path / 'start.pth'
    shutil.copy(work / 'epoch_1.pth', start)
    resumed, rec2 = _run(runs['data'], str(tmp_path / 'resumed'), amp=True, epochs=2,
                         resume=str(start))
    assert resumed.iter == runner.iter == 4
    assert rec2.losses == pytest.approx(rec.losses[2:], rel=1e-5)
    full = unwrap(runner.model).state_dict()
    again = unwrap(resumed.model).state_dict()
    assert all(torch.allclose(full[k].float(), again[k].float(), atol=1e-6) for k in full)


def test_wrapper_refuses_fp16_on_cpu_and_clips():
    model = nn.Linear(4, 2)
    with pytest.raises(ValueError, match='bfloat16'):
        AutoAmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                            dtype='float16', device_type='cpu')
    wrapper = AutoAmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                                  clip_grad=dict(max_norm=0.01), device_type='cpu')
    with wrapper.optim_context(model):
        out = model(torch.ones(3, 4) * 10)
        assert out.dtype == torch.bfloat16
        loss = out.float().pow(2).sum()
    before = model.weight.detach().clone()
    wrapper.update_params(loss)
    # one SGD step of lr 0.1 on a gradient clipped to norm 0.01 moves by <= 1e-3
    step = (model.weight.detach() - before).norm()
    assert 0 < float(step) <= 1e-3 + 1e-7
    assert wrapper.message_hub.get_scalar('train/grad_norm').current() > 0.01


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record) -> None:
        self.messages.append(record.getMessage())


def test_wrapper_state_dict_drops_cuda_loss_scaler():
    model = nn.Linear(4, 2)
    wrapper = AutoAmpOptimWrapper(optimizer=torch.optim.Adam(model.parameters()),
                                  device_type='cpu')
    state = wrapper.state_dict()
    assert 'loss_scaler' not in state
    state['loss_scaler'] = dict(scale=65536.0)
    handler = _ListHandler()
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        wrapper.load_state_dict(state)
    finally:
        logger.removeHandler(handler)
    assert any('loss-scaler state (a CUDA float16 run); it is dropped' in m
               for m in handler.messages), handler.messages
    assert wrapper.state_dict()['state'] == {}


def test_losses_run_in_float32_under_autocast():
    torch.manual_seed(0)
    a, b = torch.randn(8, 16), torch.randn(8, 16)
    head = CrossCorrelationHead()
    ref = head.loss(a, b)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        c = head.cross_correlation(a, b)
        amp = head.loss(a, b)
        cos = CosineSimilarityLoss()(a.bfloat16(), b.bfloat16())
        gan = LSGANLoss().generator_loss(a.bfloat16())
        pos, neg = moco_similarities(a.bfloat16(), b.bfloat16(), b.T.contiguous())
    assert c.dtype == amp.dtype == cos.dtype == gan.dtype == torch.float32
    # MoCo's logits (similarities / 0.2) are formed in float32 from the bf16 features
    assert pos.dtype == neg.dtype == torch.float32
    q = torch.nn.functional.normalize(a.bfloat16().float(), dim=1)
    assert torch.allclose(neg, q @ b.T, rtol=0, atol=1e-6)
    # with the mm in bf16 (no decorator) C is bf16 and the loss 4e-4 (relative) off; in
    # float32 it matches the plain computation to rounding
    assert float(amp) == pytest.approx(float(ref), rel=1e-6)


def _train_cli(args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(ROOT / 'tools' / 'train.py')] + args,
                          cwd=str(cwd), env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU path')
def test_train_tool_amp_on_cpu(tmp_path):
    toy = str(ROOT / 'tests' / 'data' / 'configs' / 'toy_2proc.py')
    result = _train_cli([toy, '--work-dir', str(tmp_path / 'w'), '--amp'], tmp_path)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    ckpt = torch.load(tmp_path / 'w' / 'epoch_2.pth', map_location='cpu', weights_only=False)
    assert ckpt['meta']['cfg'].count('AutoAmpOptimWrapper') >= 1
    fp16 = _train_cli([toy, '--work-dir', str(tmp_path / 'f'), '--amp', '--amp-dtype',
                       'float16'], tmp_path)
    assert fp16.returncode != 0
    assert train_tool.AMP_FP16_CPU_MESSAGE in fp16.stderr
    assert 'Traceback' not in fp16.stderr
