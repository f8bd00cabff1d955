# The LARS recipe of lars_coslr-1200e.py shortened for the 12-epoch demos: 1 warm-up epoch
# (the full recipe warms up for 10), validation every 2 epochs.
_base_ = ['./lars_coslr-1200e.py']
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.001, by_epoch=True, begin=1,
         convert_to_iter_based=True)
]
train_cfg = dict(max_epochs=12, val_interval=2)
