# ChestX-ray14, two augmented views only (no distortion, no restoration target): the pipeline
# of the plain methods (`di` mode).
_base_ = ['./chestxray14_dira_224.py']
train_pipeline = _base_.train_pipeline
train_pipeline[1].update(distortion=None, with_target=False)
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=train_pipeline))
test_dataloader = val_dataloader
