# The staged DiRA-MoCo-v2 recipe of ChestX-ray14 (model, schedule, hooks unchanged) on CheXpert
# frontal views; the dataset is configs/_base_/datasets/chexpert_dira_224.py's.
_base_ = ['./dira-mocov2_resnet50-unet_4xb64-staged-coslr-800e_chestxray14.py']

_chexpert = dict(type='CheXpertDataset', data_root='data/chexpert/',
                 data_prefix=dict(img_path=''), views=('Frontal', ))
train_dataloader = dict(dataset=dict(_chexpert, ann_file='CheXpert-v1.0-small/train.csv'))
val_dataloader = dict(dataset=dict(_chexpert, ann_file='CheXpert-v1.0-small/valid.csv'))
test_dataloader = val_dataloader
