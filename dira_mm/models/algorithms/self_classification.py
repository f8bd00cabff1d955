"""TransVW's self-classification of discovered visual words as a discriminative method."""
from typing import Dict, List, Optional, Union

import torch
from torch import Tensor, nn

from dira_mm.registry import ALGORITHMS
from .base import BaseSelfSupervisor

__all__ = ['SelfClassification', 'stack_labels']


def stack_labels(data_samples: Optional[list], device=None) -> Tensor:
    """One integer class per data sample (``data_sample.gt_label``) as a ``(N,)`` long tensor."""
    if not data_samples:
        raise ValueError('SelfClassification needs data samples with gt_label (the visual-word '
                         'class); use TransVWDataset and pack gt_label (PackDiRAInputs meta_keys).')
    labels = []
    for i, ds in enumerate(data_samples):
        label = getattr(ds, 'gt_label', None) if not isinstance(ds, dict) else ds.get('gt_label')
        if label is None:
            raise ValueError(f'SelfClassification: data sample {i} has no gt_label; the pipeline '
                             "must keep 'gt_label' (PackDiRAInputs meta_keys).")
        label = torch.as_tensor(label).reshape(-1)
        if label.numel() != 1:
            raise ValueError(f'SelfClassification: data sample {i} has gt_label of '
                             f'{label.numel()} values; one class index is expected.')
        labels.append(label.to(torch.long))
    return torch.cat(labels).to(device)


@ALGORITHMS.register_module()
class SelfClassification(BaseSelfSupervisor):
    """Classify a (distorted) cube into its visual-word class (TransVW, Haghighi et al. 2021).

    The discriminative half of TransVW: the encoder's deepest feature map of view 0 goes
    through ``head`` (:class:`~dira_mm.models.heads.TransVWClsHead`) and the loss is the
    cross-entropy against ``data_sample.gt_label`` (the class written by
    ``tools/misc/transvw_discover.py``). Composed by DiRA: ``di`` is classification alone
    (TransVW's ``--exp en``), ``dir`` with ``loss_weights=dict(dis=0.01, res=1)`` is TransVW
    (classification + restoration from one encoder pass), ``dira`` adds the adversary
    (DiRA on TransVW, the paper's 3-D setting; our design, DiRA released no 3-D code).

    Logs ``acc_cls`` (top-1 accuracy of the batch) next to ``loss_cls``.

    Args:
        backbone: encoder-decoder config (``GenesisUNet3D`` as TransVW's ``YNet3D``).
        head: ``TransVWClsHead`` config (``in_channels`` = the deepest ``out_channels``).
        data_preprocessor: defaults to ``DiRADataPreprocessor``.
        init_cfg: mmengine init config.
    """

    online_views = (0, )

    def __init__(self,
                 backbone: Union[dict, nn.Module],
                 head: Union[dict, nn.Module],
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if head is None:
            raise ValueError('SelfClassification needs model...head (a TransVWClsHead).')
        super().__init__(backbone=backbone, neck=None, head=head,
                         data_preprocessor=data_preprocessor, global_bn=False,
                         init_cfg=init_cfg)

    def discriminative_loss(self, inputs: List[Tensor], feats: Dict[int, List[Tensor]],
                            data_samples: Optional[list] = None,
                            update_state: bool = True) -> Dict[str, Tensor]:
        """Cross-entropy of the class logits of view 0, and the batch accuracy."""
        logits = self.head(feats[0][-1])
        labels = stack_labels(data_samples, logits.device)
        loss = self.head.loss(logits, labels)
        acc = (logits.detach().argmax(dim=1) == labels).float().mean()
        return dict(loss_cls=loss, acc_cls=acc)
