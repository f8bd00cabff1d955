# Demo: nodule segmentation of the 3-D demo phantoms with the 3-D ResNet-18 U-Net of the 3-D
# DiRA-MoCo-v2 demo (`make demo3d`: slim decoder 64-32-16-16-8). 32x32x32 crops and windows
# (the ResNet's total stride is 32), DiceCE, Adam 1e-3 constant, 20 epochs. Background crops
# are centred above -900 HU (image_threshold=0.05 of the window), as the LUNA16 base.
#   python tools/train.py configs/benchmarks/segmentation/nodule3d/<this file> \
#       --cfg-options model.pretrained=work_dirs/<3-D DiRA demo>/epoch_6.pth
_base_ = ['./genesis-unet3d-slim_finetune_1xb4-adam-20e_demo3d.py']
model = dict(backbone=dict(_delete_=True, type='ResNetUNet3D', backbone='resnet18',
                           in_channels=1, decoder_channels=(64, 32, 16, 16, 8)),
             test_cfg=dict(roi_size=(32, 32, 32)))
train_dataloader = dict(dataset=dict(dataset=dict(pipeline=[
    dict(type='RandPosNegCrop', size=(32, 32, 32), pos=1, neg=1, image_threshold=0.05),
    dict(type='PackVolumeSegInputs')])))
