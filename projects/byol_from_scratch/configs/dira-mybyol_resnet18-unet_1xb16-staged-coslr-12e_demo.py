# DiRA on MyBYOL, the method of this project, at the demo size of the shipped configs:
# ResNet-18 U-Net at 128 x 128 on the embedded data; 6 warm-up epochs (`dir`), then 6 with
# the adversary. Run from the repository root:
#   PYTHONPATH=projects/byol_from_scratch python tools/train.py <this file>

# imported before anything is built: registers MyBYOL in dira_mm's MODELS
custom_imports = dict(imports=['byol_from_scratch'], allow_failed_imports=False)

# `_base_` paths are relative to this file
_base_ = [
    '../../../configs/_base_/models/dira_byol_resnet18_unet_demo.py',
    '../../../configs/_base_/datasets/demo_dira_128.py',
    '../../../configs/_base_/schedules/sgd-adam_coslr-400e.py',
    '../../../configs/_base_/default_runtime.py',
]

# Only the discriminative method changes. DiRA itself (restorative head, discriminator,
# loss weights) comes unchanged from the model base config.
model = dict(
    discriminative=dict(
        _delete_=True,  # drop the shipped BYOL's keys (head=LatentPredictHead, ...)
        type='MyBYOL',
        backbone=_base_.model.discriminative.backbone,  # ResNet-18 U-Net
        neck=_base_.model.discriminative.neck,  # projector 512-1024-128
        predictor_channels=(128, 1024, 128),
        base_momentum=0.99,
        global_bn=True))

train_cfg = dict(max_epochs=12, val_interval=2)
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False)
custom_hooks = [
    # target EMA after every step, momentum 0.99 -> 1 on a cosine
    dict(type='MomentumUpdateHook', end_momentum=1.0),
    # the adversary joins at epoch 6
    dict(type='DiRAStageHook', adversarial_begin=6, by_epoch=True),
    dict(type='ReconstructionVisHook', interval=2, num_samples=8),
]
