"""The backbone protocol: what algorithms, classifiers, segmentors and tools may rely on.

Every dira_mm backbone is an encoder-decoder (a U-Net in all shipped ones) that can run
its halves separately. Code outside ``models/backbones`` talks to a backbone only
through this class, never through attribute or state-dict names of one implementation
(``backbone.encoder.layer4``, ``segmentation_head.*``): that is what lets a 3-D U-Net, a
Models Genesis ``UNet3D`` or a Swin UNETR stand in for the 2-D smp U-Net unchanged.
"""
from abc import ABCMeta, abstractmethod
from typing import Dict, List, Sequence, Tuple

from mmengine.model import BaseModule
from torch import Tensor, nn

__all__ = ['BaseEncoderDecoder']


class BaseEncoderDecoder(BaseModule, metaclass=ABCMeta):
    """Abstract encoder-decoder backbone.

    A subclass builds its layers and implements :meth:`forward_encoder`,
    :meth:`forward_decoder`, :meth:`encoder_module` and :attr:`out_channels`; it sets
    :attr:`spatial_dims` (2 or 3) and :attr:`with_decoder`, and names the state-dict
    prefixes of its two halves in :attr:`encoder_prefixes` / :attr:`decoder_prefixes`.

    The contract:

    - inputs are channel-first ``(N, C, *spatial)`` with ``len(spatial) == spatial_dims``;
    - :meth:`forward_encoder` returns the feature maps shallowest first, the deepest
      last (what necks pool), with channels :attr:`out_channels`;
    - :meth:`forward_decoder` maps exactly that list to the restoration / segmentation
      output, at the input's spatial size;
    - :meth:`encoder_module` is one ``nn.Module`` whose call is :meth:`forward_encoder`:
      a momentum (EMA) copy duplicates it, and a frozen-encoder fine-tuning freezes it;
    - every state-dict key starts with one of :attr:`encoder_prefixes` or
      :attr:`decoder_prefixes`, so converters and loaders split a checkpoint into the
      two halves without knowing the implementation.
    """

    #: number of spatial axes of the inputs (2: images, 3: volumes)
    spatial_dims: int = 2
    #: whether the decoder (restoration head) was built
    with_decoder: bool = True
    #: state-dict prefixes of the encoder half
    encoder_prefixes: Tuple[str, ...] = ('encoder.', )
    #: state-dict prefixes of the decoder half (decoder blocks and output head)
    decoder_prefixes: Tuple[str, ...] = ('decoder.', )

    @property
    @abstractmethod
    def out_channels(self) -> List[int]:
        """Channels of each encoder feature map, shallowest first."""

    @abstractmethod
    def encoder_module(self) -> nn.Module:
        """The module that maps an input batch to the encoder feature list."""

    @abstractmethod
    def forward_decoder(self, features: List[Tensor]) -> Tensor:
        """Restoration (or segmentation logits) from :meth:`forward_encoder`'s output."""

    def forward_encoder(self, x: Tensor) -> List[Tensor]:
        """Encoder features, shallowest first."""
        self.check_input(x)
        return list(self.encoder_module()(x))

    def forward(self, x: Tensor) -> Tensor:
        """The whole encoder-decoder."""
        return self.forward_decoder(self.forward_encoder(x))

    @property
    def input_multiple(self) -> Sequence[int]:
        """Each spatial size must be a multiple of this (per axis; the total stride)."""
        return (2 ** (len(self.out_channels) - 1), ) * self.spatial_dims

    def check_input(self, x: Tensor) -> None:
        """Raise a clear error for a batch of the wrong dimensionality."""
        if x.dim() != self.spatial_dims + 2:
            raise ValueError(
                f'{type(self).__name__} is a {self.spatial_dims}-D backbone and takes '
                f'(N, C{", D" if self.spatial_dims == 3 else ""}, H, W) batches, got shape '
                f'{tuple(x.shape)}; set model...backbone to a '
                f'{x.dim() - 2}-D backbone or check the pipeline (spatial_dims).')

    def require_decoder(self) -> None:
        """Raise when the decoder was not built (encoder-only backbone)."""
        if not self.with_decoder:
            raise RuntimeError(
                f'{type(self).__name__} was built with with_decoder=False, so it cannot '
                'restore or segment; set model...backbone.with_decoder=True.')

    def is_encoder_key(self, key: str) -> bool:
        """Whether a state-dict key (without any outer prefix) belongs to the encoder."""
        return key.startswith(tuple(self.encoder_prefixes))

    def is_decoder_key(self, key: str) -> bool:
        """Whether a state-dict key (without any outer prefix) belongs to the decoder."""
        return key.startswith(tuple(self.decoder_prefixes))

    def encoder_state_dict(self) -> Dict[str, Tensor]:
        """Detached copy of the encoder's weights and buffers, keys as in the state dict."""
        return {k: v.detach().clone() for k, v in self.state_dict().items()
                if self.is_encoder_key(k)}
