# DiRA adversarial stage with SimSiam's optimisation for the generator (SGD 0.05, cosine,
# fixed predictor lr; see sgd-fixpred_coslr-1200e.py) and the official Adam(2e-4, (0.5,
# 0.999)) for the discriminator. As the official DiRA-MoCo stage, no lr scaling for batch 16.
_base_ = ['./sgd-adam_coslr-400e.py']
optim_wrapper = dict(
    generator=dict(
        optimizer=dict(lr=0.05),
        paramwise_cfg=dict(custom_keys={'predictor': dict(fix_lr=True)})))
