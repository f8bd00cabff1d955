# Pneumothorax segmentation on SIIM-ACR, the official DiRA fine-tuning protocol (see the
# Montgomery config); an image without pneumothorax predicted empty has Dice 1.
#   python tools/train.py THIS_CONFIG --cfg-options model.pretrained=work_dirs/<run>/epoch_N.pth
_base_ = [
    './_base_/models/resnet50_unet.py',
    './_base_/datasets/siim-acr_224.py',
    './_base_/schedules/adam_coslr-200e.py',
    './_base_/default_runtime.py',
]
