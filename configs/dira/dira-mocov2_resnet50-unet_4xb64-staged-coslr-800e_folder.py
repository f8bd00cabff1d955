# The staged DiRA-MoCo-v2 recipe of ChestX-ray14 (model, schedule, hooks unchanged) on a folder
# of your own images: data/my_images/{train,val}/ scanned recursively for PNG / JPEG / DICOM.
# See configs/_base_/datasets/folder_dira_224.py for list files instead of two folders.
_base_ = ['./dira-mocov2_resnet50-unet_4xb64-staged-coslr-800e_chestxray14.py']

_folder = dict(type='MedicalImageFolder', data_root='data/my_images/', ann_file='')
train_dataloader = dict(dataset=dict(_folder, data_prefix=dict(img_path='train/')))
val_dataloader = dict(dataset=dict(_folder, data_prefix=dict(img_path='val/')))
test_dataloader = val_dataloader
