# Any folder of unlabelled PNG / JPEG / DICOM images, with the ChestX-ray14 DiRA pipeline at
# 224 x 224: only the dataset changes. MedicalImageFolder scans the image folder recursively
# (sorted, hidden files left out) for the given extensions.
# Train / val split, either
#   - two folders (below): data/my_images/{train,val}/**/*.png, or
#   - list files: one path per line relative to data_root, e.g.
#     train_dataloader = dict(dataset=dict(data_prefix=dict(img_path=''), ann_file='train.txt'))
#     (and likewise val.txt for val_dataloader); a list file replaces the scan.
_base_ = ['./chestxray14_dira_224.py']

data_root = 'data/my_images/'
_folder = dict(
    type='MedicalImageFolder',
    data_root=data_root,
    ann_file='',  # '' = scan the folder
    extensions=('.png', '.jpg', '.jpeg', '.dcm'),
    extensionless_dicom=False,  # True: also DICOM files named without .dcm (checks `DICM`)
    exclude=None)  # e.g. '*_mask.png' or ['*/lateral/*']
# the base's pipeline, seed and on_error are merged in; val keeps its seed and val_pipeline
train_dataloader = dict(dataset=dict(_folder, data_prefix=dict(img_path='train/')))
val_dataloader = dict(dataset=dict(_folder, data_prefix=dict(img_path='val/')))
test_dataloader = val_dataloader
