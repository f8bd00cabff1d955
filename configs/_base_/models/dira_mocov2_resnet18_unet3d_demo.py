# Demo size of 3-D DiRA-MoCo-v2 (our choice, to run in minutes on 2 CPU cores): a 3-D ResNet-18
# U-Net with slim decoder widths (64, 32, 16, 16, 8 instead of 256 ... 16), MLP 512-512-128,
# queue 1024, a slim 3-D patch discriminator (16, 32, 64, 128 channels instead of 64 ... 512).
_base_ = ['./dira_mocov2_resnet50_unet3d.py']
model = dict(
    discriminative=dict(
        backbone=dict(backbone='resnet18', decoder_channels=(64, 32, 16, 16, 8)),
        neck=dict(in_channels=512, hid_channels=512, out_channels=128),
        queue_len=1024),
    adversarial=dict(discriminator=dict(channels=(16, 32, 64, 128))))
