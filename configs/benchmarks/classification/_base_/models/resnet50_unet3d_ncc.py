# 3-D nodule classification on the encoder of the 3-D ResNet-50 U-Net (MONAI ResNet-50,
# torchvision key names; 2048 channels at stride 32) -> GAP over 3 axes -> linear, BCE.
_base_ = ['./genesis_unet3d_ncc.py']
model = dict(backbone=dict(_delete_=True, type='ResNetUNet3D', backbone='resnet50', in_channels=1,
                           with_decoder=False))
