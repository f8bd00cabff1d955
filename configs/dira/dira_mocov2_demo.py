# Short name of the demo (`make demo`).
_base_ = ['./dira-mocov2_resnet18-unet_1xb16-staged-coslr-12e_demo.py']
