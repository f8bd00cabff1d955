# Lung segmentation on the Montgomery set, the official DiRA fine-tuning protocol: the
# pre-trained ResNet-50 U-Net (encoder + decoder, new head), Dice loss over the batch,
# Adam 1e-3, batch 32, per-epoch cosine, 200 epochs, early stop after 20 epochs without a
# better validation Dice, best checkpoint by Dice.
#   python tools/train.py THIS_CONFIG --cfg-options model.pretrained=work_dirs/<run>/epoch_N.pth
_base_ = [
    './_base_/models/resnet50_unet.py',
    './_base_/datasets/montgomery_224.py',
    './_base_/schedules/adam_coslr-200e.py',
    './_base_/default_runtime.py',
]
