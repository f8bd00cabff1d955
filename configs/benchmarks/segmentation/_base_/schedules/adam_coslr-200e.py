# Official segmentation fine-tuning: Adam 1e-3, cosine annealing stepped once per epoch,
# 200 epochs, validation every epoch. The scheduler has no `end`: the runner sets it to
# train_cfg.max_epochs.
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3, weight_decay=0.0))
param_scheduler = [dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=0)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
