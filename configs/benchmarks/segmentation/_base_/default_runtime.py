# Runtime of the segmentation benchmarks: dira_mm's, with the best checkpoint chosen by the
# validation Dice and training stopped after 20 validations without a better one (the
# official patience).
_base_ = ['../../../_base_/default_runtime.py']
default_hooks = dict(checkpoint=dict(max_keep_ckpts=1, save_best='dice', rule='greater'))
custom_hooks = [
    dict(type='EarlyStoppingHook', monitor='dice', rule='greater', patience=20, min_delta=0.0)
]
