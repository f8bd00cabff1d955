# Fine-tuning demo on the embedded phantoms (3 findings, 128 px, ResNet-18), e.g. from the
# DiRA demo run (`make demo`), in a minute or two on 2 CPU cores:
#   python tools/train.py configs/benchmarks/classification/THIS.py \
#       --cfg-options model.pretrained=work_dirs/demo/epoch_12.pth
#   python tools/test.py configs/benchmarks/classification/THIS.py \
#       work_dirs/THIS/best_auc_epoch_N.pth         # ten-crop test AUC
_base_ = [
    './_base_/models/resnet50_multilabel.py',
    './_base_/datasets/demo_cls_128.py',
    './_base_/schedules/adam_plateau-1000e.py',
    './_base_/default_runtime.py',
]
model = dict(backbone=dict(encoder_name='resnet18'), num_classes=3)
train_cfg = dict(max_epochs=10)
default_hooks = dict(logger=dict(interval=2))
env_cfg = dict(cudnn_benchmark=False)
