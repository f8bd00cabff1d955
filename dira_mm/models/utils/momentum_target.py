"""The momentum (EMA) target of encoder + neck that MoCo and BYOL share."""
from typing import Optional

import torch
from torch import Tensor, nn

from .momentum_encoder import MomentumEncoder

__all__ = ['MomentumTargetMixin']


class MomentumTargetMixin:
    """Gives an SSL algorithm an EMA copy of its encoder and neck (MoCo's key encoder,
    BYOL's target network), one implementation for both.

    The copy is :class:`MomentumEncoder` ``momentum_encoder`` (the name
    ``MomentumUpdateHook`` looks for) over ``ModuleDict(encoder=backbone.encoder_module(),
    neck=neck)``: the backbone protocol's encoder module
    (:class:`~dira_mm.models.backbones.BaseEncoderDecoder`), 2-D or 3-D alike; the decoder
    of a U-Net backbone is not copied, since the target never restores.
    :meth:`init_weights` starts the copy equal to the online modules,
    :meth:`momentum_update` moves it (``t = m t + (1 - m) o``; the hook calls it after each
    optimizer step) and :meth:`momentum_projection` runs it without gradients.

    Put it before the base class (``class MoCo(MomentumTargetMixin, BaseSelfSupervisor)``)
    and call :meth:`init_momentum_target` at the end of ``__init__``.
    """

    backbone: nn.Module
    neck: nn.Module
    momentum_encoder: MomentumEncoder

    def init_momentum_target(self, momentum: float) -> None:
        """Create the EMA copy of the online encoder and neck with ``momentum``."""
        self.momentum_encoder = MomentumEncoder(self.momentum_source(), momentum)

    def momentum_source(self) -> nn.ModuleDict:
        """The online modules the EMA copy mirrors (encoder + neck; no copy of them)."""
        return nn.ModuleDict(dict(encoder=self.backbone.encoder_module(), neck=self.neck))

    def init_weights(self) -> None:
        """Initialise, then make the EMA copy equal to the online modules."""
        super().init_weights()
        self.momentum_encoder.copy_from(self.momentum_source())

    @property
    def momentum(self) -> float:
        """The EMA momentum; ``MomentumUpdateHook`` starts its schedule from it."""
        return self.momentum_encoder.momentum

    def momentum_update(self, momentum: Optional[float] = None) -> None:
        """``t = m t + (1 - m) o`` over the encoder and neck parameters (buffers not)."""
        self.momentum_encoder.update(self.momentum_source(), momentum)

    @torch.no_grad()
    def momentum_projection(self, x: Tensor) -> Tensor:
        """Neck output of the EMA copy for images ``x``."""
        net = self.momentum_encoder.module
        return net['neck'](net['encoder'](x))
