# Demo size of `di` (plain SimSiam) on the embedded data: ResNet-18 at 128 x 128, 12 epochs.
_base_ = [
    '../_base_/models/dira_simsiam_resnet18_unet_demo.py',
    '../_base_/datasets/demo_dira_128.py',
    '../_base_/schedules/sgd-fixpred_coslr-1200e.py',
    '../_base_/default_runtime.py',
]
model = dict(
    discriminative=dict(backbone=dict(with_decoder=False)),
    restorative=None,
    adversarial=None)
custom_hooks = _base_.ssl_hooks

train_pipeline = _base_.train_pipeline
train_pipeline[1].update(distortion=None, with_target=False)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=train_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=12, val_interval=2)
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False)
