# 3-D nodule classification (Models Genesis' NCC: nodule vs. candidate false positive): the
# encoder of Models Genesis' UNet3D (down path, 512 channels at stride 8) -> global average
# pooling over the 3 spatial axes -> linear head (N(0, 0.01)), one logit, BCE. A Genesis /
# TransVW / DiRA-TransVW checkpoint loads through the backbone's Genesis reader (its decoder
# and TransVW's class head are reported as unused).
model = dict(
    type='MultiLabelClassifier',
    # (N, 1, X, Y, Z) float cubes, already windowed [-1000, 1000] HU -> [0, 1], no normalisation
    data_preprocessor=dict(type='ClsDataPreprocessor', num_channels=1, mean=None, std=None,
                           spatial_dims=3),
    backbone=dict(type='GenesisUNet3D', in_channels=1, base_channels=32, with_decoder=False),
    num_classes=1,
    dropout=0.0,
    loss=dict(type='MaskedBCEWithLogitsLoss'),
    head_init_std=0.01,
    linear_probe=False,
    # a 3-D pre-training checkpoint; None = random init (--cfg-options model.pretrained=...)
    pretrained=None)
