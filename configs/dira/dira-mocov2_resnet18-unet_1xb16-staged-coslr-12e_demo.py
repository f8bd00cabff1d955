# The demo: DiRA-MoCo-v2 on the embedded data in a few minutes on 2 CPU cores.
# ResNet-18 U-Net at 128 x 128; 6 warm-up epochs (`dir`), then 6 with the adversary.
_base_ = [
    '../_base_/models/dira_mocov2_resnet50_unet.py',
    '../_base_/datasets/demo_dira_128.py',
    '../_base_/schedules/sgd-adam_coslr-400e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    discriminative=dict(
        backbone=dict(encoder_name='resnet18'),
        neck=dict(in_channels=512, hid_channels=512, out_channels=128),
        queue_len=1024))
max_epochs = 12
param_scheduler = dict(
    generator=[dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0.0, by_epoch=True,
                    begin=0, end=max_epochs)],
    discriminator=[dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0,
                        end=max_epochs)])
train_cfg = dict(max_epochs=max_epochs, val_interval=2)
custom_hooks = [
    dict(type='MomentumUpdateHook'),
    dict(type='DiRAStageHook', adversarial_begin=6, by_epoch=True),
    dict(type='ReconstructionVisHook', interval=2, num_samples=8),
]
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False)
