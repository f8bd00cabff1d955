# LUNA16-style nodule segmentation with Models Genesis' UNet3D (from Genesis_Chest_CT.pt,
# TransVW_chest_ct.pt or a dira_mm Genesis / TransVW / DiRA-TransVW run): Models Genesis'
# NCS recipe (64x64x32, Dice loss, Adam 1e-3, batch 16, plateau 0.5/6, early stop 50).
_base_ = ['./resnet50-unet3d_finetune_1xb16-adam-plateau_luna16-nodule-64x64x32.py']
model = dict(backbone=dict(_delete_=True, type='GenesisUNet3D', in_channels=1, base_channels=32,
                           act='relu', official_batchnorm=False))
