# The 3-D demo (`make demo3d`): DiRA-MoCo-v2 on 32x32x32 cubes of the 3-D demo data (CT
# phantoms + the MNI152 MRI, see the dataset base) in a few minutes on 2 CPU cores.
# 3-D ResNet-18 U-Net with a slim decoder; 3 warm-up epochs (`dir`), then 3 with the 3-D
# adversary (`dira`), DiRAStageHook as in 2-D. Optimisation as the 2-D demo: SGD 0.03
# (per-epoch cosine) for the generator, Adam 2e-4 for the discriminator; batch 8.
_base_ = [
    '../_base_/models/dira_mocov2_resnet18_unet3d_demo.py',
    '../_base_/datasets/demo3d_dira_views_32.py',
    '../_base_/schedules/sgd-adam_coslr-400e.py',
    '../_base_/default_runtime.py',
]
train_cfg = dict(max_epochs=6, val_interval=2)
default_hooks = dict(logger=dict(interval=2), checkpoint=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False)
custom_hooks = _base_.ssl_hooks + [
    dict(type='DiRAStageHook', adversarial_begin=3, by_epoch=True),
    dict(type='ReconstructionVisHook', interval=2, num_samples=4),
]
