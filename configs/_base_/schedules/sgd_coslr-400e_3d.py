# 3-D MoCo-v2 warm-up / `di` / `dir` optimisation (our choice): sgd_coslr-1200e.py with the rate
# scaled linearly to a total batch of 64 cubes, SGD(0.0075, 0.9, 1e-4), per-epoch cosine,
# 400 epochs (see sgd-adam_coslr-400e_3d.py).
_base_ = ['./sgd_coslr-1200e.py']
optim_wrapper = dict(optimizer=dict(lr=0.0075))
train_cfg = dict(max_epochs=400)
