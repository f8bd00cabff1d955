# Segmentation fine-tuning model of the official protocol: smp U-Net ResNet-50 (decoder
# 256-128-64-32-16, as pre-trained), one sigmoid output, Dice loss over the whole batch
# (smoothing 1), encoder + decoder initialised from a pre-training checkpoint.
model = dict(
    type='UNetSegmentor',
    backbone=dict(type='ResNetUNet', encoder_name='resnet50',
                  decoder_channels=(256, 128, 64, 32, 16)),
    num_classes=1,
    # the pre-training checkpoint (e.g. work_dirs/<dira run>/epoch_400.pth); None trains
    # from random weights (the "Random" baseline). Set by --cfg-options model.pretrained=...
    pretrained=None,
    init='encoder_decoder',  # 'encoder': the encoder only (decoder random)
    freeze_encoder=False,
    loss_dice=dict(type='DiceLoss', smooth=1.0, per_sample=False),
    bce_weight=0.0,
    threshold=0.5,
    # inputs in [0, 1], gray repeated to 3 channels, no normalisation (the official default;
    # mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225) for ImageNet's)
    data_preprocessor=dict(type='SegDataPreprocessor', num_channels=3))
