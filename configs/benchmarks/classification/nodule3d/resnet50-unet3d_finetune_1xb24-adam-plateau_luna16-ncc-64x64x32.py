# LUNA16 nodule classification with the 3-D ResNet-50 encoder (configs/dira3d pre-training):
# Models Genesis' NCC recipe otherwise (64x64x32, BCE, Adam 1e-3, batch 24, plateau, stop 10).
_base_ = ['./genesis-unet3d_finetune_1xb24-adam-plateau_luna16-ncc-64x64x32.py']
model = dict(backbone=dict(_delete_=True, type='ResNetUNet3D', backbone='resnet50', in_channels=1,
                           with_decoder=False))
