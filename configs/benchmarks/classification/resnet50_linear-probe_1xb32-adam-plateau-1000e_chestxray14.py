# Linear probe on ChestX-ray14: the pre-trained encoder is frozen (BatchNorm statistics
# included) and only the linear head learns, with the fine-tuning recipe.
#   python tools/train.py configs/benchmarks/classification/THIS.py \
#       --cfg-options model.pretrained=work_dirs/dira_mocov2_cxr14/epoch_800.pth
_base_ = ['./resnet50_finetune_1xb32-adam-plateau-1000e_chestxray14.py']
model = dict(linear_probe=True)
