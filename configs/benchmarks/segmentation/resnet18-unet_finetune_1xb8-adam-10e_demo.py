# Demo: lung segmentation of phantom radiographs (Montgomery layout, no download) with the
# ResNet-18 U-Net pre-trained by `make demo`, in a couple of minutes on 2 CPU cores:
#   python tools/misc/make_phantom_lungs.py --out data/phantom_lungs
#   python tools/train.py configs/benchmarks/segmentation/resnet18-unet_finetune_1xb8-adam-10e_demo.py
_base_ = [
    './_base_/models/resnet50_unet.py',
    './_base_/datasets/phantom_lungs_128.py',
    './_base_/schedules/adam_coslr-200e.py',
    './_base_/default_runtime.py',
]
model = dict(backbone=dict(encoder_name='resnet18'), pretrained='work_dirs/demo/epoch_12.pth')
train_cfg = dict(max_epochs=10)
default_hooks = dict(logger=dict(interval=4))
env_cfg = dict(cudnn_benchmark=False)
