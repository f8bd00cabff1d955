# Linear-probe demo on the embedded phantoms (ResNet-18 encoder frozen).
_base_ = ['./resnet18_finetune_1xb16-adam-10e_demo.py']
model = dict(linear_probe=True)
