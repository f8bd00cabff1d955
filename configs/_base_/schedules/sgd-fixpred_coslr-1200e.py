# SimSiam optimisation (Chen & He 2021): SGD(lr 0.05 x batch / 256 = 0.05 for DiRA's 256,
# momentum 0.9, wd 1e-4), per-epoch cosine; the predictor keeps lr 0.05 (--fix-pred-lr,
# held by FixedLRHook). DiRA did not publish its SimSiam schedule: DiRA's 1200 epochs.
_base_ = ['./sgd_coslr-1200e.py']
optim_wrapper = dict(
    optimizer=dict(lr=0.05),
    paramwise_cfg=dict(custom_keys={'predictor': dict(fix_lr=True)}))
