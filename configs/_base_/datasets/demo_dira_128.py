# The embedded demo data (no download): procedural chest phantoms + the real radiograph
# shipped by pydicom-data, written by `tools/misc/make_demo_data.py --out data/demo`.
# Same pipeline as ChestX-ray14, at 128 x 128.
_base_ = ['./chestxray14_dira_224.py']

data_root = 'data/demo/'
_crop = dict(type='RandomResizedCrop', size=128, scale=(0.2, 1.0))
train_pipeline = _base_.train_pipeline
train_pipeline[1]['crop'] = _crop
val_pipeline = [train_pipeline[0], dict(train_pipeline[1], keep_clean=True), train_pipeline[2]]

_loader = dict(batch_size=16, num_workers=2, pin_memory=False)
_dataset = dict(data_root=data_root, data_prefix=dict(img_path=''), pipeline=train_pipeline)
train_dataloader = dict(_loader, dataset=dict(_dataset, ann_file='train.txt'))
val_dataloader = dict(_loader, dataset=dict(_dataset, ann_file='val.txt', pipeline=val_pipeline))
test_dataloader = val_dataloader
