# 3-D nodule segmentation model on Models Genesis' UNet3D (its official layout: a
# Genesis_Chest_CT.pt / TransVW_chest_ct.pt style file, or a dira_mm Genesis / TransVW /
# DiRA-TransVW checkpoint, loads through the backbone's Genesis reader). Otherwise as
# ./resnet50_unet3d.py; its total stride is 8, so any multiple of 8 is a valid window.
_base_ = ['./resnet50_unet3d.py']
model = dict(backbone=dict(_delete_=True, type='GenesisUNet3D', in_channels=1, base_channels=32,
                           act='relu', official_batchnorm=False))
