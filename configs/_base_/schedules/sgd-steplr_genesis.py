# Models Genesis optimisation (pytorch/config.py, Genesis_Chest_CT.py): SGD lr 1, momentum 0.9,
# weight decay 0; StepLR(step_size=int(0.8 * patience)=40, gamma 0.5) per epoch (the official
# scheduler.step(epoch) at each epoch start gives lr_e = 0.5 ** (e // 40), as here);
# nb_epoch 10000 with early stopping after 50 epochs without a better validation loss; the
# best-validation checkpoint is kept.
optim_wrapper = dict(
    type='OptimWrapper', optimizer=dict(type='SGD', lr=1.0, momentum=0.9, weight_decay=0.0))
param_scheduler = [dict(type='StepLR', step_size=40, gamma=0.5, by_epoch=True, begin=0)]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10000, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
early_stopping = [dict(type='EarlyStoppingHook', monitor='loss', rule='less', patience=50,
                       min_delta=0.0)]
