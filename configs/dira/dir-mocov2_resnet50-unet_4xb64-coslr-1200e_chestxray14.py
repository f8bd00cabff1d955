# Official warm-up stage `dir` (main_DiRA_moco.py --mode dir): MoCo-v2 + restoration,
# batch 256 (4 x 64), SGD 0.03 cosine per epoch, 1200 epochs (1000 before Feb 2023).
_base_ = [
    '../_base_/models/dira_mocov2_resnet50_unet.py',
    '../_base_/datasets/chestxray14_dira_224.py',
    '../_base_/schedules/sgd_coslr-1200e.py',
    '../_base_/default_runtime.py',
]
model = dict(adversarial=None)
