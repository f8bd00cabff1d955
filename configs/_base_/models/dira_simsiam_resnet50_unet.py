# DiRA on SimSiam with the ResNet-50 U-Net (smp). SimSiam as published: projector
# 2048-2048-2048-2048 (BN + ReLU between, output BN without affine), predictor 2048-512-2048,
# symmetric negative cosine with stop-gradient, global-batch BatchNorm (official SyncBN).
_base_ = ['./dira_mocov2_resnet50_unet.py']

# the same DiRA model, U-Net, restorative head and discriminator; another discriminative method
model = dict(
    discriminative=dict(
        _delete_=True,
        type='SimSiam',
        backbone=_base_.model.discriminative.backbone,
        neck=dict(type='NonLinearNeck', in_channels=2048, hid_channels=2048,
                  out_channels=2048, num_layers=3, with_bias=False, with_last_bias=False,
                  with_last_bn=True, last_bn_affine=False),
        head=dict(type='LatentPredictHead',
                  predictor=dict(type='NonLinearNeck', in_channels=2048, hid_channels=512,
                                 out_channels=2048, num_layers=2, with_bias=False,
                                 with_last_bias=True, with_avg_pool=False),
                  loss=dict(type='CosineSimilarityLoss', shift=0.0, scale=1.0)),
        global_bn=True))

# the predictor keeps its initial learning rate (--fix-pred-lr; the schedule flags it)
ssl_hooks = [dict(type='FixedLRHook')]
custom_hooks = ssl_hooks + [dict(type='ReconstructionVisHook', interval=1, num_samples=8)]
