# DiRA-Barlow Twins in one run: warm-up (`dir`) for 400 epochs, then all three losses (`dira`)
# for 400 more (the paper: warm-up + joint training, up to 800 epochs in all). Batch 256
# throughout; one schedule over the whole run.
_base_ = [
    '../_base_/models/dira_barlowtwins_resnet50_unet.py',
    '../_base_/datasets/chestxray14_dira_224.py',
    '../_base_/schedules/lars-adam_coslr-400e.py',
    '../_base_/default_runtime.py',
]
train_cfg = dict(max_epochs=800)
custom_hooks = _base_.ssl_hooks + [
    dict(type='DiRAStageHook', adversarial_begin=400, by_epoch=True),
    dict(type='ReconstructionVisHook', interval=10, num_samples=8),
]
