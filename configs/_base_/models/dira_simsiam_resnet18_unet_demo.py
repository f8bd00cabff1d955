# Demo size of DiRA-SimSiam: ResNet-18 U-Net, projector 512-512-512-512, predictor 512-128-512.
_base_ = ['./dira_simsiam_resnet50_unet.py']
model = dict(
    discriminative=dict(
        backbone=dict(encoder_name='resnet18'),
        neck=dict(in_channels=512, hid_channels=512, out_channels=512),
        head=dict(predictor=dict(in_channels=512, hid_channels=128, out_channels=512))))
