# Linear probe on CheXpert (encoder and its BatchNorm statistics frozen).
_base_ = ['./resnet50_finetune_1xb32-adam-plateau-1000e_chexpert.py']
model = dict(linear_probe=True)
