# BYOL optimisation (Grill et al. 2020): LARS(lr 0.2 x batch / 256 = 0.2 for DiRA's 256,
# momentum 0.9, eta 0.001, wd 1.5e-6; biases and BN parameters without weight decay and trust
# ratio, at the same lr), 10 warm-up epochs then cosine to 0, per iteration.
_base_ = ['./lars_coslr-1200e.py']
optim_wrapper = dict(optimizer=dict(lr_1d_mult=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.0, by_epoch=True, begin=10,
         convert_to_iter_based=True)
]
