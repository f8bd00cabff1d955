# DiRA on Barlow Twins with the ResNet-50 U-Net (smp). Barlow Twins as published:
# projector 2048-8192-8192-8192 (BN + ReLU between, no biases), cross-correlation of the
# batch-normalised embeddings over the global batch, off-diagonal weight 5.1e-3 (the
# official code's 0.0051; the paper rounds it to 5e-3), and BatchNorm statistics over the
# global batch everywhere (official: SyncBatchNorm).
_base_ = ['./dira_mocov2_resnet50_unet.py']

# the same DiRA model, U-Net, restorative head and discriminator; another discriminative method
model = dict(
    discriminative=dict(
        _delete_=True,
        type='BarlowTwins',
        backbone=_base_.model.discriminative.backbone,
        neck=dict(type='NonLinearNeck', in_channels=2048, hid_channels=8192,
                  out_channels=8192, num_layers=3, with_bias=False, with_last_bias=False,
                  with_last_bn=False),
        head=dict(type='CrossCorrelationHead',
                  loss=dict(type='CrossCorrelationLoss', lambd=5.1e-3)),
        global_bn=True))

# Barlow Twins needs no hook of its own
ssl_hooks = []
custom_hooks = ssl_hooks + [dict(type='ReconstructionVisHook', interval=1, num_samples=8)]
