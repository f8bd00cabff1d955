# 3-D DiRA-MoCo-v2 optimisation (our choice; DiRA has no 3-D recipe): the 2-D official one
# (sgd-adam_coslr-400e.py) with the generator's rate scaled linearly to the 3-D batch:
# SGD(0.03 x 64 / 256 = 0.0075, 0.9, 1e-4) + per-epoch cosine for a total batch of 64 cubes
# (4 x 16: 64x64x32 cubes through a 3-D ResNet-50 U-Net cost ~2.6x the memory of 224^2
# images), Adam(2e-4, betas (0.5, 0.999)) at a constant rate for the discriminator, as in
# 2-D. The schedulers have no `end`/`T_max`: the runner sets them to train_cfg.max_epochs.
_base_ = ['./sgd-adam_coslr-400e.py']
optim_wrapper = dict(generator=dict(optimizer=dict(lr=0.0075)))
