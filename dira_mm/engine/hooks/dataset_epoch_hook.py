"""Tell the training dataset the epoch, so per-sample augmentation seeds change per epoch."""
from typing import List

from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop

from dira_mm.registry import HOOKS

__all__ = ['DatasetEpochHook', 'leaf_datasets']


def leaf_datasets(dataset) -> List[object]:
    """The datasets inside mmengine/torch wrappers (Concat, Repeat, ClassBalanced, Subset)."""
    if hasattr(dataset, 'datasets'):  # ConcatDataset (mmengine and torch)
        leaves = []
        for child in dataset.datasets:
            leaves.extend(leaf_datasets(child))
        return leaves
    if hasattr(dataset, 'dataset'):  # RepeatDataset, ClassBalancedDataset, torch Subset
        return leaf_datasets(dataset.dataset)
    return [dataset]


def _seeded(dataset) -> bool:
    return hasattr(dataset, 'set_epoch') and getattr(dataset, 'seed', None) is not None


@HOOKS.register_module()
class DatasetEpochHook(Hook):
    """Call ``set_epoch(runner.epoch)`` on the training dataset before every epoch.

    A dataset with a ``seed`` (``MedicalImageDataset``) seeds sample ``i`` of epoch ``e``
    with ``(seed, e, i)``; without this hook every epoch would repeat the augmentations of
    epoch 0. mmengine's ``DistSamplerSeedHook`` does the same for the sampler only.

    The epoch reaches the dataloader workers because they are started anew each epoch, after
    ``before_train_epoch``. With ``persistent_workers=True`` they keep the dataset of the
    first epoch, so that combination is refused at ``before_train``. An iteration-based loop
    calls ``before_train_epoch`` once: the epoch stays 0 and a warning says so.
    """

    priority = 'NORMAL'

    def before_train(self, runner) -> None:
        """Refuse persistent workers with a seeded dataset (they would keep epoch 0)."""
        loader = runner.train_dataloader
        seeded = [d for d in leaf_datasets(loader.dataset) if _seeded(d)]
        if not seeded:
            return
        if getattr(loader, 'persistent_workers', False) and getattr(loader, 'num_workers', 0):
            raise RuntimeError(
                f'DatasetEpochHook: the train dataloader uses persistent_workers=True with a '
                f'seeded dataset ({type(seeded[0]).__name__}, seed={seeded[0].seed}); its '
                'workers would keep the epoch of their start and repeat the same '
                'augmentations every epoch. Set `train_dataloader.persistent_workers=False` '
                '(or the dataset\'s `seed=None`).')
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            runner.logger.warning(
                f'DatasetEpochHook: {type(runner.train_loop).__name__} is not epoch based: the '
                'seeded dataset stays at epoch 0, so a sample seen twice gets the same '
                'augmentation. Use an epoch-based loop or the dataset\'s `seed=None`.')

    def before_train_epoch(self, runner) -> None:
        """Set the epoch of every dataset inside the train dataloader's dataset."""
        for dataset in leaf_datasets(runner.train_dataloader.dataset):
            if hasattr(dataset, 'set_epoch'):
                dataset.set_epoch(runner.epoch)
