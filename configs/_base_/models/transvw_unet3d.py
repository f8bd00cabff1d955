# TransVW (Haghighi et al., IEEE TMI 2021) as a DiRA composition (our design, see
# docs/transvw_genesis.md): self-classification of the discovered visual words (SelfClassification
# + TransVWClsHead: YNet3D's Conv3d 512->1024, BN, ReLU, GAP, Linear 1024->44 on the deepest map)
# plus self-restoration (MSE), one encoder pass, lambda_cls 0.01 / lambda_rec 1 (TransVW
# train.py; its argparse declares both `type=int`, here they are floats). `dir` mode; `di` is
# classification alone (TransVW --exp en), `dira` adds the 3-D adversary.
model = dict(
    type='DiRA',
    data_preprocessor=dict(type='DiRADataPreprocessor', num_channels=1, spatial_dims=3),
    discriminative=dict(
        type='SelfClassification',
        backbone=dict(
            type='GenesisUNet3D',
            in_channels=1,
            out_channels=1,
            base_channels=32,
            act='relu',
            activation='sigmoid',
            official_batchnorm=False),
        head=dict(
            type='TransVWClsHead',
            in_channels=512,
            num_classes=44,  # the configs take the dataset base's num_classes
            mid_channels=1024,
            spatial_dims=3,
            official_batchnorm=False)),
    restorative=dict(type='RestorativeHead', criterion='mse', spatial_dims=3),
    adversarial=None,
    loss_weights=dict(dis=0.01, res=1.0, adv=0.0),
    restore_view=0)
adversarial_3d = dict(
    discriminator=dict(type='PatchDiscriminator', in_channels=1, spatial_dims=3),
    loss=dict(type='LSGANLoss'))
ssl_hooks = []
custom_hooks = [dict(type='ReconstructionVisHook', interval=1, num_samples=4)]
