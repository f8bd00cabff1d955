# DiRA-MoCo-v2 in one run: warm-up (`dir`) for 400 epochs, then all three losses (`dira`)
# for 400 more (the paper: warm-up + joint training, up to 800 epochs in all). Batch 256
# throughout; one cosine schedule over the whole run.
_base_ = [
    '../_base_/models/dira_mocov2_resnet50_unet.py',
    '../_base_/datasets/chestxray14_dira_224.py',
    '../_base_/schedules/sgd-adam_coslr-400e.py',
    '../_base_/default_runtime.py',
]
max_epochs = 800
adversarial_begin = 400
param_scheduler = dict(
    generator=[dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0.0, by_epoch=True,
                    begin=0, end=max_epochs)],
    discriminator=[dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0,
                        end=max_epochs)])
train_cfg = dict(max_epochs=max_epochs)
custom_hooks = [
    dict(type='MomentumUpdateHook'),
    dict(type='DiRAStageHook', adversarial_begin=adversarial_begin, by_epoch=True),
    dict(type='ReconstructionVisHook', interval=10, num_samples=8),
]
