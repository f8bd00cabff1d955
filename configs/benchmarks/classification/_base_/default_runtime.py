# Runtime of the classification benchmarks: dira_mm's, with the best checkpoint chosen by
# the validation AUC and training stopped after 10 validations without improvement (as the
# benchmark's patience of 10).
_base_ = ['../../../_base_/default_runtime.py']

default_hooks = dict(
    checkpoint=dict(type='AtomicCheckpointHook', interval=1, max_keep_ckpts=1, save_last=True,
                    save_best='auc', rule='greater'))
custom_hooks = [
    dict(type='EarlyStoppingHook', monitor='auc', rule='greater', patience=10, min_delta=0.0),
]
