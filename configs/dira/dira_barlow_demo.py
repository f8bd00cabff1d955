# Short name of the DiRA-Barlow Twins demo.
_base_ = ['./dira-barlowtwins_resnet18-unet_1xb16-staged-lars-coslr-12e_demo.py']
