# Models Genesis' NCC schedule (keras/downstream_tasks config.py / utils.py): Adam 1e-3,
# ReduceLROnPlateau(0.5, patience 6, min_delta 1e-4, min_lr 1e-6), early stopping (patience
# 10, in the config). Genesis watches the validation loss; here the validation AUC (%).
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3, weight_decay=0.0))
param_scheduler = dict(type='ReduceOnPlateauLR', monitor='auc', rule='greater', factor=0.5,
                       patience=6, threshold=0.01, threshold_rule='abs', min_value=1e-6,
                       by_epoch=True)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=10000, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
