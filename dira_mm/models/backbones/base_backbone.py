"""The backbone protocol: what algorithms, classifiers, segmentors and tools may rely on.

Every dira_mm backbone is an encoder-decoder (a U-Net in all shipped ones) that can run
its halves separately. Code outside ``models/backbones`` talks to a backbone only
through this class, never through attribute or state-dict names of one implementation
(``backbone.encoder.layer4``, ``segmentation_head.*``): that is what lets a 3-D U-Net, a
Models Genesis ``UNet3D`` or a Swin UNETR stand in for the 2-D smp U-Net unchanged.
"""
from abc import ABCMeta, abstractmethod
from typing import Dict, List, Optional, Sequence, Tuple

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
      a momentum (EMA) copy duplicates it, and a frozen-encoder fine-tuning freezes it,
      so the encoder's parameters and buffers must be registered in it (submodules, not
      modules a closure captures), in the same order on every call;
    - every state-dict key starts with one of :attr:`encoder_prefixes` or
      :attr:`decoder_prefixes`, so converters and loaders split a checkpoint into the
      two halves without knowing the implementation.

    Optional hooks with working defaults (added for the consumers; override as needed):

    - :attr:`head_prefixes`: the decoder prefixes of the output head (the restoration
      head, which a segmentor replaces); by convention the last of several
      :attr:`decoder_prefixes` (``segmentation_head.``, ``out_tr.``), none when there is
      only one; override it when the convention does not hold;
    - :attr:`arch_name`: a short name of the architecture for key-match reports and
      errors (default: the class name; ``ResNetUNet``: its smp encoder name);
    - :meth:`encoder_stages`: the encoder's modules grouped by stage, stem first, which
      :meth:`frozen_stage_modules` uses for a classifier's ``frozen_stages`` (default:
      None, the backbone has no stages to freeze one by one);
    - the constructor of a backbone the segmentor may use takes ``out_channels``,
      ``activation`` and ``with_decoder`` (all shipped backbones do).

    Who calls what: algorithms call :meth:`forward_encoder` / :meth:`forward_decoder`
    and read :attr:`with_decoder` and :attr:`spatial_dims`; ``MomentumTargetMixin`` copies
    :meth:`encoder_module`; the classifier pools the last :meth:`forward_encoder` map
    (width ``out_channels[-1]``) and freezes :meth:`frozen_stage_modules`; the segmentor
    freezes :meth:`encoder_module`, checks sizes against :attr:`input_multiple` and
    splits checkpoints with the prefixes; the weight readers and converters use
    :meth:`is_encoder_key` / :meth:`is_decoder_key` (or the prefixes).
    """

    #: number of spatial axes of the inputs (2: images, 3: volumes)
    spatial_dims: int = 2
    #: channels the first layer takes (a default data preprocessor repeats gray to it)
    in_channels: int = 3
    #: whether the decoder (restoration head) was built
    with_decoder: bool = True
    #: state-dict prefixes of the encoder half
    encoder_prefixes: Tuple[str, ...] = ('encoder.', )
    #: state-dict prefixes of the decoder half (decoder blocks and output head)
    decoder_prefixes: Tuple[str, ...] = ('decoder.', )

    def default_data_preprocessor(self) -> dict:
        """The data preprocessor config a model uses when none is configured: the
        backbone's ``spatial_dims`` and input channels."""
        return dict(type='DiRADataPreprocessor', spatial_dims=self.spatial_dims,
                    num_channels=int(self.in_channels))

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

    @property
    def head_prefixes(self) -> Tuple[str, ...]:
        """State-dict prefixes of the output head (part of the decoder)."""
        prefixes = tuple(self.decoder_prefixes)
        return prefixes[-1:] if len(prefixes) > 1 else ()

    @property
    def arch_name(self) -> str:
        """Short name of the architecture for reports and error messages."""
        return type(self).__name__

    def encoder_stages(self) -> Optional[List[List[nn.Module]]]:
        """The encoder's modules per stage, the stem first (index 0), or None when the
        backbone does not define stages (then only the whole encoder can be frozen)."""
        return None

    def frozen_stage_modules(self, frozen_stages: int) -> List[nn.Module]:
        """The modules to freeze for ``frozen_stages=k``: the stem (0) and stages 1..k.

        Raises:
            ValueError: the backbone defines no stages, or ``k`` is out of range; the
                message names ``frozen_stages`` and what to do instead.
        """
        stages = self.encoder_stages()
        if not stages:
            raise ValueError(
                f'frozen_stages={frozen_stages}: {self.arch_name} ({type(self).__name__}) '
                'defines no encoder stages to freeze one by one; use linear_probe=True (or '
                'freeze_encoder) to freeze the whole encoder.')
        if not 0 <= frozen_stages < len(stages):
            raise ValueError(
                f'frozen_stages={frozen_stages}: {self.arch_name} has the stem (0) and '
                f'stages 1..{len(stages) - 1}; choose a value in [0, {len(stages) - 1}] '
                '(-1 freezes nothing).')
        return [m for stage in stages[:frozen_stages + 1] for m in stage]

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
