# Multi-label classifier of the transfer benchmark: the ResNet-50 encoder of DiRA's U-Net
# (smp keys, so a pre-training checkpoint loads as it is) -> global average pooling ->
# linear head (N(0, 0.01) init) with the BCE loss; labels of -1 are ignored.
model = dict(
    type='MultiLabelClassifier',
    # gray uint8 -> 3 channels in [0, 1] -> ImageNet mean/std (the benchmark's default
    # `--normalization imagenet`); mean=None, std=None keeps [0, 1] as pre-training saw it
    data_preprocessor=dict(
        type='ClsDataPreprocessor', num_channels=3,
        mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    backbone=dict(
        type='ResNetUNet', encoder_name='resnet50', encoder_depth=5, in_channels=3,
        with_decoder=False, encoder_weights=None),
    num_classes=14,
    dropout=0.0,
    loss=dict(type='MaskedBCEWithLogitsLoss'),
    head_init_std=0.01,
    # full fine-tuning; True: linear probe (encoder frozen, BatchNorm in eval mode)
    linear_probe=False,
    # the pre-trained encoder: a dira_mm checkpoint (e.g. the last `epoch_*.pth` of a DiRA
    # run), an smp U-Net or a torchvision ResNet state dict; None = random init. Set it with
    # `--cfg-options model.pretrained=work_dirs/.../epoch_800.pth`.
    pretrained=None)
