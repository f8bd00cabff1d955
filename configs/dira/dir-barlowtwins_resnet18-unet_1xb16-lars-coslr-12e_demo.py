# Demo size of `dir` (Barlow Twins + restoration) on the embedded data: ResNet-18 U-Net at
# 128 x 128, 12 epochs.
_base_ = [
    '../_base_/models/dira_barlowtwins_resnet18_unet_demo.py',
    '../_base_/datasets/demo_dira_128.py',
    '../_base_/schedules/lars_coslr-12e_demo.py',
    '../_base_/default_runtime.py',
]
model = dict(adversarial=None)
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False)
