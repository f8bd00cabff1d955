# The embedded demo data (no download): procedural chest phantoms + the real radiograph
# shipped by pydicom-data, written by `tools/misc/make_demo_data.py --out data/demo`.
# Same pipeline as ChestX-ray14, at 128 x 128.
_base_ = ['./chestxray14_dira_224.py']

data_root = 'data/demo/'
_crop = dict(type='RandomResizedCrop', size=128, scale=(0.2, 1.0))
train_pipeline = _base_.train_pipeline
train_pipeline[1]['crop'] = _crop

train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    pin_memory=False,
    dataset=dict(data_root=data_root, ann_file='train.txt', data_prefix=dict(img_path=''),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=2,
    pin_memory=False,
    dataset=dict(data_root=data_root, ann_file='val.txt', data_prefix=dict(img_path=''),
                 pipeline=train_pipeline))
test_dataloader = val_dataloader
