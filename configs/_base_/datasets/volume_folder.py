# Any folder of unlabelled CT volumes (NIfTI .nii/.nii.gz, MetaImage .mhd/.mha, DICOM series
# folders), with the Models Genesis cube pipeline of luna16_genesis.py: only the dataset changes.
# VolumeFolderDataset scans the folder recursively (sorted, hidden files left out); a folder
# holding .dcm files is one DICOM series. Train / val split, either
#   - two folders (below): data/my_ct/{train,val}/**/*.nii.gz, or
#   - list files: one volume per line (a file or a series folder) relative to data_root, e.g.
#     train_dataloader = dict(dataset=dict(data_prefix=dict(img_path=''), ann_file='train.txt'))
# Override per task by replacing the pipeline's first step, e.g. an abdominal window and
# isotropic resampling (MONAI Spacing, trilinear):
#     _pipe = [dict(type='LoadVolume', window=(-175, 250), spacing=(1.5, 1.5, 2.0))] + \
#         _base_.train_pipeline[1:]
#     train_dataloader = dict(dataset=dict(pipeline=_pipe))
_base_ = ['./luna16_genesis.py']

data_root = 'data/my_ct/'
_folder = dict(
    _delete_=True,  # LUNA16Dataset's `subsets` does not apply
    type='VolumeFolderDataset',
    data_root=data_root,
    ann_file='',  # '' = scan the folder
    extensions=('.nii', '.nii.gz', '.mhd', '.mha'),
    dicom_series=True,
    extensionless_dicom=False,
    exclude=None,  # e.g. '*_seg.nii.gz'
    cubes_per_volume=32,
    fixed_cubes=False,
    on_error='skip')
train_dataloader = dict(dataset=dict(_folder, data_prefix=dict(img_path='train/'),
                                     pipeline=_base_.train_pipeline, seed=0))
val_dataloader = dict(dataset=dict(_folder, data_prefix=dict(img_path='val/'),
                                   pipeline=_base_.val_pipeline, seed=2022))
test_dataloader = val_dataloader
