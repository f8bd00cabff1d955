"""Base class of discriminative self-supervised algorithms."""
from abc import ABCMeta, abstractmethod
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModel
from torch import Tensor, nn

from ..backbones.base_backbone import BaseEncoderDecoder
from ..utils.builder import build_module  # noqa: F401 (its old import path)
from ..utils.global_batch_norm import convert_global_batchnorm
from ..utils.nonfinite import NonFiniteLossCheckMixin
from ..utils.spatial import spatial_dims_conflict


class BaseSelfSupervisor(NonFiniteLossCheckMixin, BaseModel, metaclass=ABCMeta):
    """A discriminative SSL method over views of an image (MoCo-v2, Barlow Twins, ...).

    A subclass says which views need online (gradient) encoder features
    (:attr:`online_views`) and computes its loss from them
    (:meth:`discriminative_loss`). Everything DiRA adds is generic and lives here and in
    :class:`~dira_mm.models.algorithms.DiRA`: ``forward(mode='restore')`` returns the
    discriminative losses *and* the decoder's reconstruction of one view from the same
    encoder pass, so no method carries its own copy of the restorative logic.

    The backbone is used only through the protocol of
    :class:`~dira_mm.models.backbones.BaseEncoderDecoder` (``forward_encoder``,
    ``forward_decoder``, ``encoder_module``, ``spatial_dims``), so a 2-D and a 3-D U-Net
    are interchangeable. The parts that declare ``spatial_dims`` (backbone, neck, head,
    data preprocessor) must agree; a model that mixes them fails when built, naming the
    keys.

    Args:
        backbone: a :class:`~dira_mm.models.backbones.BaseEncoderDecoder` config (e.g.
            ``ResNetUNet``).
        neck: projector config.
        head: loss head config.
        data_preprocessor: defaults to ``DiRADataPreprocessor`` with the backbone's
            ``spatial_dims``; a configured one must agree with the backbone.
        global_bn: replace every BatchNorm of the backbone, neck and head by
            :class:`~dira_mm.models.utils.GlobalBatchNorm`, whose training statistics
            span all processes (the official Barlow Twins / SimSiam / BYOL convert
            the model to ``SyncBatchNorm``; ours also runs on CPU with gloo). Identical
            to BatchNorm in one process. None: the method's default
            (:attr:`default_global_bn`).
        init_cfg: mmengine init config.
    """

    #: indices of the views whose online-encoder features the loss needs
    online_views: Tuple[int, ...] = (0, 1)
    #: whether BatchNorm spans the global batch unless the config says otherwise
    default_global_bn: bool = False

    def __init__(self,
                 backbone: Union[dict, nn.Module],
                 neck: Optional[Union[dict, nn.Module]] = None,
                 head: Optional[Union[dict, nn.Module]] = None,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 global_bn: Optional[bool] = None,
                 init_cfg: Optional[dict] = None) -> None:
        backbone = build_module(backbone)
        if not isinstance(backbone, BaseEncoderDecoder):
            raise TypeError(
                f'{type(self).__name__}: model.backbone must be a BaseEncoderDecoder (the '
                f'backbone protocol, e.g. ResNetUNet), got {type(backbone).__name__}.')
        if data_preprocessor is None:
            # not configured: the default follows the backbone (spatial_dims, channels)
            data_preprocessor = backbone.default_data_preprocessor()
        elif isinstance(data_preprocessor, dict):
            data_preprocessor = dict(data_preprocessor)
            data_preprocessor.setdefault('type', 'DiRADataPreprocessor')
        # built through dira_mm's registry, so no default scope is needed
        data_preprocessor = build_module(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = backbone
        self.neck = build_module(neck)
        self.head = build_module(head)
        spatial_dims_conflict(
            {'model.backbone': self.backbone, 'model.neck': self.neck,
             'model.head': self.head, 'model.data_preprocessor': self.data_preprocessor},
            f'{type(self).__name__} (in a DiRA model: under model.discriminative)')
        self.global_bn = self.default_global_bn if global_bn is None else bool(global_bn)
        if self.global_bn:
            for name in ('backbone', 'neck', 'head'):
                module = getattr(self, name)
                if module is not None:
                    setattr(self, name, convert_global_batchnorm(module))

    @property
    def spatial_dims(self) -> int:
        """Spatial axes of the inputs (the backbone's)."""
        return self.backbone.spatial_dims

    def extract_feat(self, inputs: Tensor) -> List[Tensor]:
        """Online encoder features of one batch of views."""
        return self.backbone.forward_encoder(inputs)

    def _online_features(self, inputs: Sequence[Tensor],
                         views: Sequence[int]) -> Dict[int, List[Tensor]]:
        if len(inputs) <= max(views):
            raise ValueError(
                f'{type(self).__name__} needs views {tuple(views)} but the batch has '
                f'{len(inputs)}; check the pipeline (e.g. DiRAViews num_views).')
        return {v: self.extract_feat(inputs[v]) for v in views}

    @abstractmethod
    def discriminative_loss(self, inputs: List[Tensor], feats: Dict[int, List[Tensor]],
                            data_samples: Optional[list] = None,
                            update_state: bool = True) -> Dict[str, Tensor]:
        """Losses of the method (keys containing ``'loss'`` are summed for backward).

        Args:
            inputs: all views of the batch.
            feats: online encoder features of the views in :attr:`online_views`.
            data_samples: per-sample metadata.
            update_state: update internal state (e.g. a MoCo queue). Validation passes
                ``False`` unless the official validation behaviour is asked for.
        """

    def loss(self, inputs: List[Tensor], data_samples: Optional[list] = None,
             update_state: bool = True) -> Dict[str, Tensor]:
        """Plain (``di``) training loss."""
        feats = self._online_features(inputs, self.online_views)
        return self.discriminative_loss(inputs, feats, data_samples, update_state)

    def loss_and_restore(self, inputs: List[Tensor], data_samples: Optional[list] = None,
                         restore_view: int = 0,
                         update_state: bool = True) -> Tuple[Dict[str, Tensor], Tensor]:
        """Discriminative losses and the reconstruction of ``inputs[restore_view]``."""
        views = sorted(set(self.online_views) | {restore_view})
        feats = self._online_features(inputs, views)
        losses = self.discriminative_loss(
            inputs, {v: feats[v] for v in self.online_views}, data_samples, update_state)
        reconstruction = self.backbone.forward_decoder(feats[restore_view])
        return losses, reconstruction

    def momentum_update(self, momentum: Optional[float] = None) -> None:
        """EMA step of a momentum/target network; methods without one do nothing."""

    def forward(self, inputs: Union[Tensor, List[Tensor]], data_samples: Optional[list] = None,
                mode: str = 'tensor', restore_view: int = 0, update_state: bool = True):
        """Dispatch on ``mode``: ``tensor`` (features), ``loss``, ``restore``, ``predict``."""
        if isinstance(inputs, Tensor):
            inputs = [inputs]
        if mode == 'tensor':
            return self.extract_feat(inputs[0])
        if mode == 'loss':
            return self.loss(inputs, data_samples, update_state=update_state)
        if mode == 'restore':
            return self.loss_and_restore(inputs, data_samples, restore_view, update_state)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f'{type(self).__name__}.forward: unknown mode {mode!r} '
                         "(use 'tensor', 'loss', 'restore' or 'predict')")

    @torch.no_grad()
    def predict(self, inputs: List[Tensor], data_samples: Optional[list] = None) -> List[dict]:
        """Validation: the loss on the batch, without updating any state."""
        losses = self.loss(inputs, data_samples, update_state=False)
        total = sum(v for k, v in losses.items() if 'loss' in k)
        out = {k: float(v) for k, v in losses.items()}
        out.update(loss=float(total), batch_size=int(inputs[0].shape[0]))
        return [out]
