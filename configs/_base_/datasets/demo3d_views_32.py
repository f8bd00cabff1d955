# The 3-D demo data, two augmented views only (no Genesis distortion, no restoration target):
# the pipeline of the plain methods (`di` mode); otherwise demo3d_dira_views_32.py.
_base_ = ['./demo3d_dira_views_32.py']
views = dict(_base_.views, distortion=None, with_target=False)
ct_pipeline = [_base_.ct_pipeline[0], _base_.cubes, views, _base_.pack]
mri_pipeline = [_base_.mri_pipeline[0], _base_.cubes, views, _base_.pack]
train_dataloader = dict(dataset=dict(datasets=[
    dict(_base_.ct_dataset, pipeline=ct_pipeline),
    dict(_base_.mri_dataset, pipeline=mri_pipeline)]))
val_dataloader = dict(dataset=dict(pipeline=ct_pipeline))
test_dataloader = val_dataloader
