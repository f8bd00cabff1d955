# The DiRA-MoCo-v2 demo with k-NN and linear probes of the frozen encoder every 2 epochs:
# mean AUC of the 3 phantom findings (probe/knn_auc, probe/linear_auc, per class) in the log,
# TensorBoard and scalars.json, and the checkpoint of the best k-NN AUC
# (best_probe_knn_auc_epoch_N.pth). The labels are only read by the probes.
_base_ = ['../dira_mocov2_demo.py']

# deterministic view at the training resolution (shorter side to 128, centre crop);
# gt_label is kept
_probe_pipeline = [
    dict(type='LoadMedicalImage'),
    dict(type='Resize', size=128),
    dict(type='CenterCrop', size=128),
    dict(type='PackDiRAInputs', meta_keys=('img_path', 'sample_idx', 'gt_label', 'skipped')),
]
_probe_dataset = dict(
    type='ChestXray14Dataset',
    data_root=_base_.data_root,
    data_prefix=dict(img_path=''),
    pipeline=_probe_pipeline)
_probe_loader = dict(batch_size=16, num_workers=2, pin_memory=False,
                     collate_fn=dict(type='default_collate'))

custom_hooks = _base_.custom_hooks + [
    dict(
        type='ProbeHook',
        interval=2,
        # the demo lists are in ChestX-ray14's format; the phantoms' findings are 3 of the
        # 14 columns (the real radiograph at the end of train.txt is all negative)
        train_dataloader=dict(_probe_loader, dataset=dict(_probe_dataset, ann_file='train.txt')),
        val_dataloader=dict(_probe_loader, dataset=dict(_probe_dataset, ann_file='val.txt')),
        classes=('Nodule', 'Cardiomegaly', 'Effusion'),
        probes=('knn', 'linear'),
        knn=dict(k=10, temperature=0.07),
        linear=dict(steps=300, weight_decay=1e-4),
        save_best='knn_auc'),
]
