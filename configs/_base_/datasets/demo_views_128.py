# The embedded demo data, two augmented views only (`di` mode; see chestxray14_views_224.py).
_base_ = ['./demo_dira_128.py']
train_pipeline = _base_.train_pipeline
train_pipeline[1].update(distortion=None, with_target=False)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=train_pipeline))
test_dataloader = val_dataloader
