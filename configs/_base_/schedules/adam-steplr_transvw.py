# TransVW optimisation (pytorch/config.py, train.py): Adam lr 1e-3 (torch defaults otherwise),
# StepLR(step_size=int(0.8 * patience)=40, gamma 0.5) per epoch, nb_epoch 10000, early stopping
# after 50 epochs without a better validation loss, best-validation checkpoint.
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3))
param_scheduler = [dict(type='StepLR', step_size=40, gamma=0.5, by_epoch=True, begin=0)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10000, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
early_stopping = [dict(type='EarlyStoppingHook', monitor='loss', rule='less', patience=50,
                       min_delta=0.0)]
