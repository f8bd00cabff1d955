"""Segmentation datasets: image/mask pairing, mask union, list files, SIIM-ACR CSV + DICOM."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from dira_mm.datasets import (ImageMaskDataset, SIIMPneumothoraxDataset,
                              make_phantom_lung_dataset, phantom_lung_masks, rle_encode,
                              sample_chest_phantom_params)

PIPELINE = [dict(type='LoadMedicalImage'), dict(type='LoadSegMask'),
            dict(type='PackSegInputs')]
MASK_DIRS = ['ManualMask/leftMask', 'ManualMask/rightMask']


def _png(path, img):
    os.makedirs(osp.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), img)


def _montgomery(root, names=('a.png', 'b.png'), size=(6, 8)):
    """Images whose value is their index; the left/right masks mark distinct pixels."""
    left, right = {}, {}
    for i, name in enumerate(names):
        _png(osp.join(root, 'CXR_png', name), np.full(size, 10 * (i + 1), np.uint8))
        left[name] = np.zeros(size, np.uint8)
        left[name][i, 0:2] = 255
        right[name] = np.zeros(size, np.uint8)
        right[name][i + 2, 5:7] = 255
        _png(osp.join(root, MASK_DIRS[0], name), left[name])
        _png(osp.join(root, MASK_DIRS[1], name), right[name])
    return left, right


def test_folder_pairing_and_left_right_union(tmp_path):
    left, right = _montgomery(tmp_path)
    ds = ImageMaskDataset(data_root=str(tmp_path), pipeline=PIPELINE,
                          data_prefix=dict(img_path='CXR_png', seg_map_path=MASK_DIRS))
    assert len(ds) == 2
    for idx, name in enumerate(('a.png', 'b.png')):
        out = ds[idx]
        assert int(out['inputs'][0, 0, 0]) == 10 * (idx + 1)  # the right image ...
        expected = ((left[name] > 0) | (right[name] > 0)).astype(np.uint8)
        np.testing.assert_array_equal(out['data_samples'].gt_mask[0].numpy(), expected)
        assert [osp.basename(osp.dirname(p)) for p in out['data_samples'].seg_map_path] == \
            ['leftMask', 'rightMask']  # ... with both of its masks
    # one mask folder only
    ds = ImageMaskDataset(data_root=str(tmp_path), pipeline=PIPELINE,
                          data_prefix=dict(img_path='CXR_png', seg_map_path=MASK_DIRS[1]))
    np.testing.assert_array_equal(ds[1]['data_samples'].gt_mask[0].numpy(),
                                  (right['b.png'] > 0).astype(np.uint8))


def test_missing_mask_and_folder_raise(tmp_path):
    _montgomery(tmp_path)
    os.remove(osp.join(tmp_path, MASK_DIRS[1], 'b.png'))
    with pytest.raises(FileNotFoundError, match=r'1 mask file\(s\) missing.*rightMask/b.png'):
        ImageMaskDataset(data_root=str(tmp_path),
                         data_prefix=dict(img_path='CXR_png', seg_map_path=MASK_DIRS))
    with pytest.raises(FileNotFoundError, match="seg_map_path.*nowhere"):
        ImageMaskDataset(data_root=str(tmp_path),
                         data_prefix=dict(img_path='CXR_png', seg_map_path='nowhere'))
    with pytest.raises(ValueError, match="seg_map_path.*is required"):
        ImageMaskDataset(data_root=str(tmp_path), data_prefix=dict(img_path='CXR_png'))


def test_list_file_with_explicit_masks_and_suffix(tmp_path):
    _montgomery(tmp_path)
    (tmp_path / 'pairs.txt').write_text('# image mask\nb.png leftMask/b.png\n\na.png leftMask/a.png '
                                        'rightMask/a.png\n')
    ds = ImageMaskDataset(data_root=str(tmp_path), ann_file='pairs.txt', pipeline=PIPELINE,
                          data_prefix=dict(img_path='CXR_png', seg_map_path='ManualMask'))
    assert [osp.basename(ds.get_data_info(i)['img_path']) for i in range(2)] == ['b.png',
                                                                                  'a.png']
    assert ds[0]['data_samples'].gt_mask.sum() == 2  # b: the left mask only
    assert ds[1]['data_samples'].gt_mask.sum() == 4  # a: left + right
    # image names only: masks found by name (+ suffix) in each folder
    for name in ('a', 'b'):
        for folder in MASK_DIRS:
            os.rename(osp.join(tmp_path, folder, f'{name}.png'),
                      osp.join(tmp_path, folder, f'{name}_mask.png'))
    (tmp_path / 'names.txt').write_text('a.png\n')
    ds = ImageMaskDataset(data_root=str(tmp_path), ann_file='names.txt', pipeline=PIPELINE,
                          seg_map_suffix='_mask.png',
                          data_prefix=dict(img_path='CXR_png', seg_map_path=MASK_DIRS))
    assert len(ds) == 1 and ds[0]['data_samples'].gt_mask.sum() == 4
    (tmp_path / 'bad.txt').write_text('a.png x.png\n')
    with pytest.raises(ValueError, match='line 1 .* several mask folders'):
        ImageMaskDataset(data_root=str(tmp_path), ann_file='bad.txt',
                         data_prefix=dict(img_path='CXR_png', seg_map_path=MASK_DIRS))


def test_phantom_lung_set_reads_like_montgomery(tmp_path):
    info = make_phantom_lung_dataset(str(tmp_path), num_train=3, num_val=2, num_test=1,
                                     size=64, seed=1)
    ds = ImageMaskDataset(data_root=info['out_dir'], ann_file='val.txt', pipeline=PIPELINE,
                          data_prefix=dict(img_path='CXR_png', seg_map_path=MASK_DIRS))
    assert len(ds) == 2
    assert open(info['test_list']).read() == 'phantom_lung_test_00000.png\n'
    masks = phantom_lung_masks(sample_chest_phantom_params([1, 11, 1]), 64)
    assert masks['left'].any() and masks['right'].any() and not (masks['left'] &
                                                                 masks['right']).any()
    # the patient's left lung is on the image's right
    assert np.nonzero(masks['left'])[1].min() > np.nonzero(masks['right'])[1].max()
    np.testing.assert_array_equal(ds[1]['data_samples'].gt_mask[0].numpy(),
                                  (masks['left'] | masks['right']).astype(np.uint8))


def _dicom(path, img):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = osp.basename(path)[:-4]
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, osp.basename(path)[:-4]
    ds.Rows, ds.Columns = img.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, 'MONOCHROME2'
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = img.tobytes()
    os.makedirs(osp.dirname(path), exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def test_siim_csv_rows_merged_split_and_missing_images(tmp_path):
    shape = (6, 5)
    regions = {}
    for i, uid in enumerate(('1.2.3.1', '1.2.3.2', '1.2.3.3')):
        img = np.full(shape, 40 * (i + 1), np.uint8)
        img[0, 0] = 0  # a min-max window keeps the value order
        _dicom(str(tmp_path / 'dicom-images-train' / f'study{i}' / 'series' / f'{uid}.dcm'),
               img)
        regions[uid] = []
    a, b = np.zeros(shape, np.uint8), np.zeros(shape, np.uint8)
    a[1:3, 1] = 1
    b[2:5, 3] = 1
    rows = [('1.2.3.1', rle_encode(a)), ('1.2.3.2', '-1'), ('1.2.3.1', rle_encode(b)),
            ('1.2.3.3', rle_encode(b))]
    (tmp_path / 'train-rle.csv').write_text(
        'ImageId, EncodedPixels\n' + ''.join(f'{i}, {r}\n' for i, r in rows))
    pipeline = [dict(type='LoadMedicalImage'), dict(type='LoadSegMask'),
                dict(type='PackSegInputs', meta_keys=('img_path', 'image_id', 'gt_label'))]
    ds = SIIMPneumothoraxDataset(data_root=str(tmp_path), pipeline=pipeline)
    assert [ds.get_data_info(i)['image_id'] for i in range(len(ds))] == \
        ['1.2.3.1', '1.2.3.2', '1.2.3.3']
    first = ds[0]
    np.testing.assert_array_equal(first['data_samples'].gt_mask[0].numpy(), a | b)
    assert first['inputs'].shape == (1, ) + shape
    assert not ds[1]['data_samples'].gt_mask.any()
    assert [float(ds.get_data_info(i)['gt_label'][0]) for i in range(3)] == [1.0, 0.0, 1.0]
    # a split file (IDs or file names) keeps those images
    (tmp_path / 'val.txt').write_text('1.2.3.3.dcm\n1.2.3.2\n')
    ds = SIIMPneumothoraxDataset(data_root=str(tmp_path), split_file='val.txt')
    assert [ds.get_data_info(i)['image_id'] for i in range(2)] == ['1.2.3.3', '1.2.3.2']
    # an image of the CSV without its DICOM
    os.remove(tmp_path / 'dicom-images-train' / 'study1' / 'series' / '1.2.3.2.dcm')
    with pytest.raises(FileNotFoundError, match='1 of the 3 images have no DICOM'):
        SIIMPneumothoraxDataset(data_root=str(tmp_path))
    ds = SIIMPneumothoraxDataset(data_root=str(tmp_path), missing_images='skip')
    assert len(ds) == 2
