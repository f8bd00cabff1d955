# Short name: DiRA on MoCo-v2, CheXpert (frontal), ResNet-50 U-Net, staged in one run.
# `tools/dist_train.sh configs/dira/dira_mocov2_chexpert.py 4`
_base_ = ['./dira-mocov2_resnet50-unet_4xb64-staged-coslr-800e_chexpert.py']
