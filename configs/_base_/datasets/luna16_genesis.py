# LUNA16 for Models Genesis restoration: 64x64x32 cubes of the raw scans (no resampling), HU
# [-1000, 1000] -> [0, 1], the air/lung filter, the published distortions, batch 6 (Genesis
# config.py / infinite_generator_3D.py). Folds as Genesis: train subsets 0-4, val 5-6, test 7-9.
# data_root holds subset0 .. subset9 (the unpacked LUNA16 archives: <seriesuid>.mhd + .raw).
#
# Cubes: each scan gives cubes_per_volume=32 samples per epoch (Genesis: 32 cubes per scan),
# each at a position drawn from its own (seed, epoch, index) generator; one sample is one cube,
# so batch_size counts cubes. Genesis extracts its cubes once, offline; here they are redrawn
# every epoch (fixed_cubes=True restores one fixed set; the distortions change every epoch
# either way). Set LoadVolume(cache_dir='/fast/disk/luna16_cache') to decode each scan once
# and memory-map it afterwards (4 bytes per voxel: ~115 GB for subsets 0-4).
dataset_type = 'LUNA16Dataset'
data_root = 'data/luna16/'
cube_size = (64, 64, 32)
hu_window = (-1000, 1000)

load = dict(type='LoadVolume', window=hu_window, spacing=None, cache_dir=None)
cubes = dict(
    type='RandomCubes',
    size=cube_size,
    border=(100, 100, 30),  # len_border / len_border_z
    extra_depth=3,  # len_depth: the filter looks 3 slices deep
    air_filter=True,  # the official generator always filters
    air_hu=-150.0,
    max_air_fraction=0.15,  # lung_max
    max_tries=50)
# the published probabilities; official_axes=False fixes the channel/depth flip bug
distortion = dict(type='GenesisDistortion', official_axes=False)
pack = dict(type='PackDiRAInputs', spatial_dims=3,
            meta_keys=('img_path', 'sample_idx', 'skipped', 'distortion', 'cube_origins'))
train_pipeline = [load, cubes, distortion, pack]
# Genesis distorts validation batches too; the fixed seed makes them the same every epoch
val_pipeline = train_pipeline

train_dataloader = dict(
    batch_size=6,
    num_workers=4,
    persistent_workers=False,  # per-epoch augmentation seeds (DatasetEpochHook)
    pin_memory=True,
    drop_last=True,  # Genesis: N_train // 6 steps per epoch
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        subsets=(0, 1, 2, 3, 4),
        cubes_per_volume=32,
        fixed_cubes=False,  # True: the same cubes every epoch, as Genesis' offline set
        pipeline=train_pipeline,
        seed=0,
        on_error='skip'))
val_dataloader = dict(
    train_dataloader,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(train_dataloader['dataset'], subsets=(5, 6), seed=2022,
                 pipeline=val_pipeline))
test_dataloader = dict(val_dataloader, dataset=dict(val_dataloader['dataset'], subsets=(7, 8, 9)))
val_evaluator = dict(type='SSLLossMetric')
test_evaluator = val_evaluator
