# `dir` mode in 3-D (warm-up stage, our design): MoCo-v2 + restoration of the Genesis-distorted
# view 0 on LUNA16 cubes, batch 64 (4 x 16), SGD 0.0075, per-epoch cosine, 400 epochs. A
# `dira` run can start from its checkpoint (load_from) as the official two-run flow in 2-D.
_base_ = [
    '../_base_/models/dira_mocov2_resnet50_unet3d.py',
    '../_base_/datasets/luna16_dira_views.py',
    '../_base_/schedules/sgd_coslr-400e_3d.py',
    '../_base_/default_runtime.py',
]
model = dict(adversarial=None)
train_dataloader = dict(batch_size=16)  # per GPU: 4 x 16 = 64
val_dataloader = dict(batch_size=16)
test_dataloader = val_dataloader
custom_hooks = _base_.custom_hooks
