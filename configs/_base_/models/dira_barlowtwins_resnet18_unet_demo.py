# Demo size of DiRA-Barlow Twins: ResNet-18 U-Net, projector 512-1024-1024-1024.
_base_ = ['./dira_barlowtwins_resnet50_unet.py']
model = dict(
    discriminative=dict(
        backbone=dict(encoder_name='resnet18'),
        neck=dict(in_channels=512, hid_channels=1024, out_channels=1024)))
