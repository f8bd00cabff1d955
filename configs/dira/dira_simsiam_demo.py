# Short name of the DiRA-SimSiam demo.
_base_ = ['./dira-simsiam_resnet18-unet_1xb16-staged-coslr-12e_demo.py']
