# Plain MyBYOL (`di`: no restoration, no adversary) at the demo size: ResNet-18 at
# 128 x 128 on the embedded data, 12 epochs. Run from the repository root:
#   PYTHONPATH=projects/byol_from_scratch python tools/train.py <this file>
custom_imports = dict(imports=['byol_from_scratch'], allow_failed_imports=False)

_base_ = [
    '../../../configs/_base_/models/dira_byol_resnet18_unet_demo.py',
    '../../../configs/_base_/datasets/demo_dira_128.py',
    '../../../configs/_base_/schedules/sgd_coslr-1200e.py',
    '../../../configs/_base_/default_runtime.py',
]

model = dict(
    discriminative=dict(
        _delete_=True,
        type='MyBYOL',
        # encoder only: nothing restores in `di`
        backbone=dict(_base_.model.discriminative.backbone, with_decoder=False),
        neck=_base_.model.discriminative.neck,
        predictor_channels=(128, 1024, 128),
        base_momentum=0.99,
        global_bn=True),
    restorative=None,
    adversarial=None)

# two views, no distortion and no restoration target
train_pipeline = _base_.train_pipeline
train_pipeline[1].update(distortion=None, with_target=False)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=train_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=12, val_interval=2)
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False)
custom_hooks = [dict(type='MomentumUpdateHook', end_momentum=1.0)]
