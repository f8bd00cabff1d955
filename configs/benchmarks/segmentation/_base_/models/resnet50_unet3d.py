# 3-D nodule segmentation model: UNetSegmentor on the 3-D ResNet-50 U-Net (MONAI FlexibleUNet,
# decoder 256-128-64-32-16, as pre-trained by configs/dira3d), one sigmoid output, encoder +
# decoder initialised from a 3-D pre-training checkpoint. Loss: soft Dice over the whole batch
# (smoothing 1), as Models Genesis' NCS (`1 - dice_coef`); `bce_weight=1.0` adds the BCE
# (DiceCE). Validation/test: MONAI's sliding-window inference over whole volumes.
model = dict(
    type='UNetSegmentor',
    backbone=dict(type='ResNetUNet3D', backbone='resnet50', in_channels=1,
                  decoder_channels=(256, 128, 64, 32, 16)),
    num_classes=1,
    # a 3-D pre-training checkpoint (DiRA `ssl.backbone.*`, a plain method's `backbone.*`);
    # None: random weights (the "Random" baseline). --cfg-options model.pretrained=...
    pretrained=None,
    init='encoder_decoder',  # 'encoder': the encoder only (decoder random)
    freeze_encoder=False,
    loss_dice=dict(type='DiceLoss', smooth=1.0, per_sample=False),
    bce_weight=0.0,
    threshold=0.5,
    # (N, 1, X, Y, Z) float volumes, already windowed [-1000, 1000] HU -> [0, 1]
    data_preprocessor=dict(type='SegDataPreprocessor', num_channels=1, spatial_dims=3),
    # whole volumes by windows of the training crop, overlapping by half, Gaussian blending
    test_cfg=dict(mode='slide', roi_size=(64, 64, 32), overlap=0.5, sw_batch_size=4,
                  blend_mode='gaussian'))
