# The 3-D demo data, two augmented views only (no Genesis distortion, no restoration target):
# the pipeline of the plain methods (`di` mode); otherwise demo3d_dira_views_32.py.
_base_ = ['./demo3d_dira_views_32.py']
_datasets = _base_.train_dataloader.dataset.datasets
for _d in _datasets:
    _d.pipeline[2].update(distortion=None, with_target=False)
_val = _base_.val_dataloader.dataset
_val.pipeline[2].update(distortion=None, with_target=False, keep_clean=False)
train_dataloader = dict(dataset=dict(datasets=_datasets))
val_dataloader = dict(dataset=_val)
test_dataloader = val_dataloader
del _datasets, _d, _val
