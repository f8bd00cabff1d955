# Short name: DiRA on SimSiam, ChestX-ray14, ResNet-50 U-Net, staged in one run.
# `tools/dist_train.sh configs/dira/dira_simsiam_cxr14.py 4`
_base_ = ['./dira-simsiam_resnet50-unet_4xb64-staged-coslr-800e_chestxray14.py']
