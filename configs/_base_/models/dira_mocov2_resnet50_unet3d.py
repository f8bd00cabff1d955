# DiRA-MoCo-v2 on 3-D crops (our design: DiRA released no 3-D code, see docs/transvw_genesis.md
# and docs/volumes.md). The 2-D recipe of dira_mocov2_resnet50_unet.py with every part in 3-D:
#   - backbone: ResNetUNet3D, MONAI FlexibleUNet with a 3-D ResNet-50 encoder (torchvision key
#     names, so a 2-D DiRA encoder inflates into it with `inflate_from`) and smp's decoder widths;
#     one CT channel (HU window -> [0, 1]) instead of the 2-D recipe's gray image repeated to 3;
#     sigmoid output as the 2-D generator. FlexibleUNet's decoder upsamples by trilinear
#     interpolation ('nontrainable', its default; smp's 2-D decoder is nearest + conv).
#   - neck: MoCo-v2's MLP 2048-2048-128 after a global 3-D average pool (spatial_dims=3);
#     temperature 0.2, queue 65536, momentum 0.999, shuffle BN: MoCo-v2's values, as in 2-D.
#   - restoration: MSE of the restored view 0 against its undistorted crop, weight 10 (2-D).
#   - adversary: DiRA's patch discriminator in 3-D (Conv3d / InstanceNorm3d, 64x64x32 ->
#     8x8x4 scores), LSGAN, weight 0.001 (2-D).
model = dict(
    type='DiRA',
    # float volumes already in [0, 1] pass through (no / 255, no normalisation)
    data_preprocessor=dict(type='DiRADataPreprocessor', num_channels=1, spatial_dims=3),
    discriminative=dict(
        type='MoCo',
        backbone=dict(
            type='ResNetUNet3D',
            backbone='resnet50',
            in_channels=1,
            out_channels=1,
            decoder_channels=(256, 128, 64, 32, 16),
            activation='sigmoid',
            with_decoder=True,
            inflate_from=None),
        neck=dict(type='MoCoV2Neck', in_channels=2048, hid_channels=2048, out_channels=128,
                  spatial_dims=3),
        head=dict(type='ContrastiveHead', temperature=0.2),
        queue_len=65536,
        feat_dim=128,
        momentum=0.999,
        shuffle_bn=True),
    restorative=dict(type='RestorativeHead', criterion='mse', spatial_dims=3),
    adversarial=dict(
        discriminator=dict(type='PatchDiscriminator', in_channels=1, spatial_dims=3),
        loss=dict(type='LSGANLoss')),
    loss_weights=dict(dis=1.0, res=10.0, adv=0.001),
    restore_view=0,
    official_val=False)

# Generator (ssl) and discriminator are separate DDP modules with their own optimizers.
model_wrapper_cfg = dict(
    type='MMSeparateDistributedDataParallel', broadcast_buffers=False,
    find_unused_parameters=False)

# key encoder EMA, 0.999 constant
ssl_hooks = [dict(type='MomentumUpdateHook')]
custom_hooks = ssl_hooks + [
    # PNG + TensorBoard grids of input / distorted / restored / target; volumes are drawn as
    # their three orthogonal middle slices per cell
    dict(type='ReconstructionVisHook', interval=1, num_samples=8),
]
