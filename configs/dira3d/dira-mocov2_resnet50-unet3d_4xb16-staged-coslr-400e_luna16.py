# 3-D DiRA-MoCo-v2 on LUNA16 in one run (our design; DiRA released no 3-D code): warm-up
# (`dir`: MoCo-v2 + restoration) for 200 epochs, then all three losses (`dira`) for 200 more,
# switched by DiRAStageHook as the 2-D staged configs do. Choices that are ours:
#   - model (see the model base): 3-D ResNet-50 U-Net (MONAI FlexibleUNet), MoCo-v2 neck and
#     DiRA's patch discriminator in 3-D; lambda dis / res / adv = 1 / 10 / 0.001 as in 2-D;
#   - data (see luna16_dira_views.py): Models Genesis' 64x64x32 cubes of subsets 0-4 (32 per
#     scan per epoch, HU [-1000, 1000], air/lung filter) as the "images", two views each by a
#     3-D random resized crop, flip, intensity jitter and blur, Genesis distortions (without
#     their flip) in place of DiRA's 2-D in/out-painting and block swap;
#   - batch 64 = 4 GPUs x 16 cubes (2-D: 4 x 64 images) and SGD 0.0075 (0.03 scaled linearly,
#     see the schedule base); Adam 2e-4 for the discriminator as in 2-D;
#   - 400 epochs, half warm-up (2-D: 400 + 400 on ~75k images; an epoch here is ~14k cubes).
_base_ = [
    '../_base_/models/dira_mocov2_resnet50_unet3d.py',
    '../_base_/datasets/luna16_dira_views.py',
    '../_base_/schedules/sgd-adam_coslr-400e_3d.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=16)  # per GPU: 4 x 16 = 64
val_dataloader = dict(batch_size=16)
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=400)
custom_hooks = _base_.ssl_hooks + [
    dict(type='DiRAStageHook', adversarial_begin=200, by_epoch=True),
    dict(type='ReconstructionVisHook', interval=10, num_samples=8),
]
