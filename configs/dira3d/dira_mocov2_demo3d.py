# Short name of the 3-D demo (`make demo3d`).
_base_ = ['./dira-mocov2_resnet18-unet3d_1xb8-staged-coslr-6e_demo3d.py']
