# DiRA on BYOL with the ResNet-50 U-Net (smp). BYOL as published: projector and predictor
# 4096-256 (BN + ReLU), target = EMA of encoder + projector with momentum 0.996 -> 1 (cosine),
# loss 2 - 2 cos, symmetrised; global-batch BatchNorm.
_base_ = ['./dira_mocov2_resnet50_unet.py']

# the same DiRA model, U-Net, restorative head and discriminator; another discriminative method
model = dict(
    discriminative=dict(
        _delete_=True,
        type='BYOL',
        backbone=_base_.model.discriminative.backbone,
        neck=dict(type='NonLinearNeck', in_channels=2048, hid_channels=4096,
                  out_channels=256, num_layers=2, with_bias=True),
        head=dict(type='LatentPredictHead',
                  predictor=dict(type='NonLinearNeck', in_channels=256, hid_channels=4096,
                                 out_channels=256, num_layers=2, with_bias=True,
                                 with_avg_pool=False),
                  loss=dict(type='CosineSimilarityLoss', shift=2.0, scale=2.0)),
        base_momentum=0.996,
        global_bn=True))

# target EMA, momentum 0.996 -> 1 over the run (BYOL's cosine schedule)
ssl_hooks = [dict(type='MomentumUpdateHook', end_momentum=1.0)]
custom_hooks = ssl_hooks + [dict(type='ReconstructionVisHook', interval=1, num_samples=8)]
