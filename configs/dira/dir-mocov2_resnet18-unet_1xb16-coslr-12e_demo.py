# Demo size of `dir` (MoCo-v2 + restoration) on the embedded data: ResNet-18 U-Net at
# 128 x 128, 12 epochs.
_base_ = [
    '../_base_/models/dira_mocov2_resnet18_unet_demo.py',
    '../_base_/datasets/demo_dira_128.py',
    '../_base_/schedules/sgd_coslr-1200e.py',
    '../_base_/default_runtime.py',
]
model = dict(adversarial=None)
train_cfg = dict(max_epochs=12, val_interval=2)
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False)
