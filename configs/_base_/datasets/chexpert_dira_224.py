# CheXpert with the ChestX-ray14 DiRA pipeline at 224 x 224: only the dataset changes.
# data_root holds the release folder as unpacked, e.g. data/chexpert/CheXpert-v1.0-small/
# {train.csv, valid.csv, train/, valid/}. The CSV paths start with the release folder
# (CheXpert-v1.0-small/train/patient00001/...); strip_components='auto' also finds the images
# when data_root is the release folder itself (then ann_file='train.csv').
_base_ = ['./chestxray14_dira_224.py']

data_root = 'data/chexpert/'
_chexpert = dict(
    type='CheXpertDataset',
    data_root=data_root,
    data_prefix=dict(img_path=''),
    views=('Frontal', ),  # ('Frontal', 'Lateral') keeps every image
    # labels are not used by pre-training; for fine-tuning, e.g. uncertain='zeros' with
    # uncertain_per_class=CHEXPERT_UNCERTAIN_PROTOCOL (dira_mm.datasets.chexpert)
    uncertain='ignore',
    blank=0)
# the base's pipeline, seed and on_error are merged in; val keeps its seed and val_pipeline
train_dataloader = dict(dataset=dict(_chexpert, ann_file='CheXpert-v1.0-small/train.csv'))
val_dataloader = dict(dataset=dict(_chexpert, ann_file='CheXpert-v1.0-small/valid.csv'))
test_dataloader = val_dataloader
