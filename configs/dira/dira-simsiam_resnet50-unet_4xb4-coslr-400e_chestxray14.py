# `dira` stage of the official two-run flow: SimSiam + restoration + adversary, batch 16
# (4 x 4), 400 epochs, initialised from the LAST checkpoint of the `dir` warm-up (a
# fresh discriminator, optimizers and schedule), as main_DiRA_moco.py --mode dira.
_base_ = [
    '../_base_/models/dira_simsiam_resnet50_unet.py',
    '../_base_/datasets/chestxray14_dira_224.py',
    '../_base_/schedules/sgd-fixpred-adam_coslr-400e.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=4)
val_dataloader = dict(batch_size=4)
test_dataloader = val_dataloader
load_from = 'work_dirs/dir-simsiam_resnet50-unet_4xb64-coslr-1200e_chestxray14/epoch_1200.pth'
