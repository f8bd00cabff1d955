"""DiRA with two CPU processes (gloo) through tools/dist_train.sh."""
import os
import os.path as osp
import socket
import subprocess
import sys

import torch

from conftest import REPO, tiny_config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_two_process_gloo_dira(demo_data, tmp_path):
    work_dir = str(tmp_path / 'work')
    cfg = tiny_config(demo_data, work_dir, mode='dira', epochs=1, adversarial_begin=0)
    cfg_path = str(tmp_path / 'tiny_dira.py')
    cfg.dump(cfg_path)
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()), OMP_NUM_THREADS='1')
    result = subprocess.run(['bash', osp.join(REPO, 'tools', 'dist_train.sh'), cfg_path, '2'],
                            cwd=str(tmp_path), env=env, capture_output=True, text=True,
                            timeout=300)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert 'GPU number: 2' in log
    assert 'loss_d' in log  # discriminator steps ran under MMSeparateDistributedDataParallel
    ckpt = torch.load(osp.join(work_dir, 'epoch_1.pth'), map_location='cpu', weights_only=True)
    # 17 images over 2 ranks x batch 4 (drop_last): 2 iterations, each enqueues the 8 keys
    # gathered from both ranks
    assert int(ckpt['state_dict']['ssl.queue_ptr']) == 16


def test_two_process_gloo_dira_barlowtwins_global_bn(demo_data, tmp_path):
    """DiRA-Barlow Twins under DDP on CPU: global-batch BN and cross-correlation in a real
    training run (every BatchNorm is a GlobalBatchNorm; the adversary is on)."""
    from conftest import demo_config_at_test_size
    work_dir = str(tmp_path / 'work')
    path = osp.join(REPO, 'configs', 'dira', 'dira_barlow_demo.py')
    cfg = demo_config_at_test_size(path, demo_data, work_dir)
    cfg_path = str(tmp_path / 'tiny_barlow.py')
    cfg.dump(cfg_path)
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(_free_port()), OMP_NUM_THREADS='1')
    result = subprocess.run(['bash', osp.join(REPO, 'tools', 'dist_train.sh'), cfg_path, '2'],
                            cwd=str(tmp_path), env=env, capture_output=True, text=True,
                            timeout=300)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert 'GPU number: 2' in log and 'loss_d' in log
    ckpt = torch.load(osp.join(work_dir, 'epoch_1.pth'), map_location='cpu', weights_only=True)
    state = ckpt['state_dict']
    # BN running statistics are the same on both ranks only because they are global; the
    # saved ones must have moved from their initial values
    key = 'ssl.backbone.encoder.bn1.running_mean'
    assert key in state and state[key].abs().sum() > 0
