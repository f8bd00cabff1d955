# Models Genesis' downstream schedule (keras/downstream_tasks config.py and utils.py: NCS,
# NCC): Adam 1e-3, ReduceLROnPlateau(factor 0.5, patience 6, min_delta 1e-4, min_lr 1e-6),
# "10000" epochs ended by early stopping (../default_runtime.py). Genesis watches the
# validation loss; here the validation Dice (%, sliding window over whole volumes) decides,
# with Keras' absolute min_delta 1e-4 on a [0, 1] score read as 0.01 points of Dice.
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3, weight_decay=0.0))
param_scheduler = dict(type='ReduceOnPlateauLR', monitor='dice', rule='greater', factor=0.5,
                       patience=6, threshold=0.01, threshold_rule='abs', min_value=1e-6,
                       by_epoch=True)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10000, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
