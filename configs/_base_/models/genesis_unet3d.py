# Models Genesis (Zhou et al., MICCAI 2019) as a DiRA composition (our design, see
# docs/transvw_genesis.md): DiRA's `dir` mode with no discriminative term. RestorationOnly runs
# the Genesis 3-D U-Net (UNet3D key layout, 19.07 M parameters, sigmoid output) on the distorted
# cube; the restorative head is Genesis' MSE against the undistorted cube, weight 1.
model = dict(
    type='DiRA',
    data_preprocessor=dict(type='DiRADataPreprocessor', num_channels=1, spatial_dims=3),
    discriminative=dict(
        type='RestorationOnly',
        backbone=dict(
            type='GenesisUNet3D',
            in_channels=1,
            out_channels=1,
            base_channels=32,
            act='relu',
            activation='sigmoid',
            # True: the official ContBatchNorm3d (batch statistics in eval mode too)
            official_batchnorm=False)),
    restorative=dict(type='RestorativeHead', criterion='mse', spatial_dims=3),
    adversarial=None,
    loss_weights=dict(dis=1.0, res=1.0, adv=0.0),
    restore_view=0)
# the 3-D adversary of `dira` (mode configs add it): DiRA's patch discriminator in 3-D,
# 64x64x32 -> 8x8x4 patch scores
adversarial_3d = dict(
    discriminator=dict(type='PatchDiscriminator', in_channels=1, spatial_dims=3),
    loss=dict(type='LSGANLoss'))
ssl_hooks = []
custom_hooks = [dict(type='ReconstructionVisHook', interval=1, num_samples=4)]
