# LUNA16, two augmented 3-D views only (no Genesis distortion, no restoration target): the
# pipeline of the plain methods (`di` mode) on 3-D crops; otherwise luna16_dira_views.py.
_base_ = ['./luna16_dira_views.py']
views = dict(_base_.views, distortion=None, with_target=False)
train_pipeline = [_base_.load, _base_.cubes, views, _base_.train_pipeline[-1]]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=train_pipeline))
test_dataloader = val_dataloader
