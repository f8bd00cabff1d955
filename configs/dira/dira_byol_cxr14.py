# Short name: DiRA on BYOL, ChestX-ray14, ResNet-50 U-Net, staged in one run.
# `tools/dist_train.sh configs/dira/dira_byol_cxr14.py 4`
_base_ = ['./dira-byol_resnet50-unet_4xb64-staged-lars-coslr-800e_chestxray14.py']
