# Demo size of DiRA-BYOL: ResNet-18 U-Net, projector 512-1024-128, predictor 128-1024-128,
# base momentum 0.99 (a short run).
_base_ = ['./dira_byol_resnet50_unet.py']
model = dict(
    discriminative=dict(
        backbone=dict(encoder_name='resnet18'),
        neck=dict(in_channels=512, hid_channels=1024, out_channels=128),
        head=dict(predictor=dict(in_channels=128, hid_channels=1024, out_channels=128)),
        base_momentum=0.99))
