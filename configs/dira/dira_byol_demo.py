# Short name of the DiRA-BYOL demo.
_base_ = ['./dira-byol_resnet18-unet_1xb16-staged-lars-coslr-12e_demo.py']
