# Demo size of DiRA-MoCo-v2: ResNet-18 U-Net, MLP 512-512-128, queue 1024.
_base_ = ['./dira_mocov2_resnet50_unet.py']
model = dict(
    discriminative=dict(
        backbone=dict(encoder_name='resnet18'),
        neck=dict(in_channels=512, hid_channels=512, out_channels=128),
        queue_len=1024))
