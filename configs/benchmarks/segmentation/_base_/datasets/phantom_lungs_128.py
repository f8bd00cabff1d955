# Phantom chest radiographs with lung masks in the Montgomery layout (no download), at
# 128 x 128: `python tools/misc/make_phantom_lungs.py --out data/phantom_lungs`.
_base_ = ['./montgomery_224.py']
data_root = 'data/phantom_lungs/'
img_size = 128
train_pipeline = [dict(t, size=img_size) if 'size' in t else t for t in _base_.train_pipeline]
val_pipeline = [dict(t, size=img_size) if 'size' in t else t for t in _base_.val_pipeline]
_dataset = dict(data_root=data_root)
train_dataloader = dict(batch_size=8, num_workers=2,  # merged into the label-fraction wrapper
                        dataset=dict(dataset=dict(_dataset, pipeline=train_pipeline)))
# merged into the base's val.txt and test.txt loaders
val_dataloader = dict(batch_size=8, num_workers=2, dataset=dict(_dataset, pipeline=val_pipeline))
test_dataloader = val_dataloader
