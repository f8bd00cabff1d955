# DiRA adversarial stage with BYOL's optimisation for the generator (see
# lars-byol_coslr-1200e.py) and the official Adam(2e-4, (0.5, 0.999)) for the discriminator.
_base_ = ['./lars-adam_coslr-400e.py']
optim_wrapper = dict(generator=dict(optimizer=dict(lr_1d_mult=1.0)))
param_scheduler = dict(
    generator=[
        dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
             convert_to_iter_based=True),
        dict(type='CosineAnnealingLR', eta_min_ratio=0.0, by_epoch=True, begin=10,
             convert_to_iter_based=True)
    ])
