# The embedded demo data (`tools/misc/make_demo_data.py --out data/demo`) as a 3-class task:
# phantoms with Nodule, Cardiomegaly and Effusion labels (ChestX-ray14 list format, 14
# columns, of which ClassSubsetDataset keeps those three). The benchmark pipelines at 128 px
# (Resize 146 = 128 * 256 / 224); validation and test both use val.txt.
_base_ = ['./chestxray14_cls_224.py']

data_root = 'data/demo/'
_classes = ('Nodule', 'Cardiomegaly', 'Effusion')
train_pipeline = _base_.train_pipeline
train_pipeline[1]['size'] = 128  # RandomResizedCrop
val_pipeline = _base_.val_pipeline
test_pipeline = _base_.test_pipeline
for _pipeline in (val_pipeline, test_pipeline):
    _pipeline[1]['size'] = 146  # Resize
    _pipeline[2]['size'] = 128  # CenterCrop / TenCrop
_list = dict(type='ChestXray14Dataset', data_root=data_root, data_prefix=dict(img_path=''))
_loader = dict(batch_size=16, num_workers=2, pin_memory=False)
train_dataloader = dict(
    _loader,
    dataset=dict(
        _delete_=True,
        type='LabelFractionDataset',
        fraction=1.0,
        seed=99,
        dataset=dict(type='ClassSubsetDataset', classes=_classes,
                     dataset=dict(_list, ann_file='train.txt', pipeline=train_pipeline,
                                  seed=0))))
val_dataloader = dict(
    _loader,
    dataset=dict(_delete_=True, type='ClassSubsetDataset', classes=_classes,
                 dataset=dict(_list, ann_file='val.txt', pipeline=val_pipeline)))
test_dataloader = dict(
    _loader,
    dataset=dict(_delete_=True, type='ClassSubsetDataset', classes=_classes,
                 dataset=dict(_list, ann_file='val.txt', pipeline=test_pipeline)))
