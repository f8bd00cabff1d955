# Full fine-tuning on ChestX-ray14 (14 findings), the DiRA transfer benchmark protocol:
#   python tools/train.py configs/benchmarks/classification/THIS.py \
#       --cfg-options model.pretrained=work_dirs/dira_mocov2_cxr14/epoch_800.pth
# label fractions: add train_dataloader.dataset.fraction=0.01 (0.25, 0.5);
# N trials with mean +- std: tools/benchmarks/classification_trials.py THIS.py --trials 5 ...
_base_ = [
    './_base_/models/resnet50_multilabel.py',
    './_base_/datasets/chestxray14_cls_224.py',
    './_base_/schedules/adam_plateau-1000e.py',
    './_base_/default_runtime.py',
]
