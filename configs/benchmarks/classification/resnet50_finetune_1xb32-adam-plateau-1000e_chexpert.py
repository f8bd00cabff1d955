# Full fine-tuning on CheXpert: 14 outputs trained, AUC on the five competition findings.
#   python tools/train.py configs/benchmarks/classification/THIS.py \
#       --cfg-options model.pretrained=work_dirs/dira_mocov2_cxr14/epoch_800.pth
# label fractions: add train_dataloader.dataset.fraction=0.01 (0.25, 0.5)
_base_ = [
    './_base_/models/resnet50_multilabel.py',
    './_base_/datasets/chexpert_cls_224.py',
    './_base_/schedules/adam_plateau-1000e.py',
    './_base_/default_runtime.py',
]
