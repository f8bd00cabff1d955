# lars-adam_coslr-400e.py shortened for the 12-epoch demos (see lars_coslr-12e_demo.py).
_base_ = ['./lars-adam_coslr-400e.py']
param_scheduler = dict(generator=[
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.001, by_epoch=True, begin=1,
         convert_to_iter_based=True)
])
train_cfg = dict(max_epochs=12, val_interval=2)
