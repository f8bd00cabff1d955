# DiRA on MoCo-v2 with the official ResNet-50 U-Net (smp), as main_DiRA_moco.py --mode dira.
model = dict(
    type='DiRA',
    data_preprocessor=dict(type='DiRADataPreprocessor', num_channels=3),
    discriminative=dict(
        type='MoCo',
        backbone=dict(
            type='ResNetUNet',
            encoder_name='resnet50',
            encoder_depth=5,
            decoder_channels=(256, 128, 64, 32, 16),
            in_channels=3,
            out_channels=1,
            activation='sigmoid',
            with_decoder=True,
            encoder_weights=None),
        neck=dict(type='MoCoV2Neck', in_channels=2048, hid_channels=2048, out_channels=128),
        head=dict(type='ContrastiveHead', temperature=0.2),
        queue_len=65536,
        feat_dim=128,
        momentum=0.999,
        shuffle_bn=True),
    restorative=dict(type='RestorativeHead', criterion='mse'),
    adversarial=dict(
        discriminator=dict(type='PatchDiscriminator', in_channels=1),
        loss=dict(type='LSGANLoss')),
    loss_weights=dict(dis=1.0, res=10.0, adv=0.001),
    restore_view=0,
    official_val=False)

# Generator (ssl) and discriminator are separate DDP modules with their own optimizers.
model_wrapper_cfg = dict(
    type='MMSeparateDistributedDataParallel', broadcast_buffers=False,
    find_unused_parameters=False)

# hooks the method itself needs (mode configs reuse them: `_base_.ssl_hooks + [...]`):
# key encoder EMA, 0.999 constant
ssl_hooks = [dict(type='MomentumUpdateHook')]
custom_hooks = ssl_hooks + [
    # PNG + TensorBoard grids of input / distorted / restored / target
    dict(type='ReconstructionVisHook', interval=1, num_samples=8),
]
