"""The empty discriminative method: DiRA's ``dir`` mode on it is Models Genesis."""
from typing import Dict, List, Optional, Union

from torch import Tensor, nn

from dira_mm.registry import ALGORITHMS
from .base import BaseSelfSupervisor

__all__ = ['RestorationOnly']


@ALGORITHMS.register_module()
class RestorationOnly(BaseSelfSupervisor):
    """A :class:`BaseSelfSupervisor` with no discriminative loss (our design).

    Models Genesis (Zhou et al., MICCAI 2019) trains a U-Net to restore a distorted cube
    and nothing else. In dira_mm that is DiRA's ``dir`` mode with an empty discriminative
    term: ``DiRA(discriminative=dict(type='RestorationOnly', backbone=...),
    restorative=dict(type='RestorativeHead'), loss_weights=dict(res=1))``. The encoder runs
    once per batch, on the restored view (view 0, the distorted cube); DiRA's restorative
    head compares the decoder output with ``data_sample.target``. The ``dira`` mode adds
    the adversary to it as to any method.

    There is nothing to train without restoration, so the ``di`` mode (``forward(mode=
    'loss')``) raises an error naming the missing ``model.restorative``.

    Args:
        backbone: encoder-decoder config (``GenesisUNet3D``, ``ResNetUNet3D``, ...).
        data_preprocessor: defaults to ``DiRADataPreprocessor``.
        init_cfg: mmengine init config.
    """

    online_views = (0, )

    def __init__(self,
                 backbone: Union[dict, nn.Module],
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(backbone=backbone, neck=None, head=None,
                         data_preprocessor=data_preprocessor, global_bn=False,
                         init_cfg=init_cfg)

    def discriminative_loss(self, inputs: List[Tensor], feats: Dict[int, List[Tensor]],
                            data_samples: Optional[list] = None,
                            update_state: bool = True) -> Dict[str, Tensor]:
        """No discriminative term: an empty dict."""
        return {}

    def loss(self, inputs: List[Tensor], data_samples: Optional[list] = None,
             update_state: bool = True) -> Dict[str, Tensor]:
        raise RuntimeError(
            'RestorationOnly has no discriminative loss, so it cannot train alone (the `di` '
            "mode); add model.restorative=dict(type='RestorativeHead') to the DiRA model "
            '(Models Genesis is the `dir` mode).')
