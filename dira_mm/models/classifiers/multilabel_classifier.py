"""Multi-label classifier on a pre-trained encoder: the transfer-learning benchmark model."""
import re
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.model import BaseModel
from torch import Tensor, nn

from dira_mm.registry import MODELS
from dira_mm.structures import DiRADataSample
from dira_mm.utils.convert import WeightConversionError
from ..backbones.base_backbone import BaseEncoderDecoder
from ..utils.backbone_weights import check_dimensionality, unet_weights_for, \
    uses_genesis_layout
from ..utils.builder import build_module
from ..utils.load_checked import load_checked
from ..utils.nonfinite import NonFiniteLossCheckMixin
from ..utils.pretrained import encoder_weights_from_checkpoint, read_pretrained

__all__ = ['MultiLabelClassifier']

#: the encoder of the official DiRA U-Net (ResNet-50, smp keys ``encoder.*``)
DEFAULT_BACKBONE = dict(type='ResNetUNet', encoder_name='resnet50', with_decoder=False)
_MODES = ('tensor', 'loss', 'predict')
_HEAD_KEYS = (r'head\..*', )


@MODELS.register_module()
class MultiLabelClassifier(NonFiniteLossCheckMixin, BaseModel):
    """Encoder -> global average pooling -> dropout -> linear head, one logit per finding.

    This is the classification model of the DiRA transfer benchmark (ChestX-ray14,
    CheXpert): torchvision's ResNet-50 with a new ``fc``, here the encoder of the U-Net
    that DiRA pre-trains (``ResNetUNet(with_decoder=False)``: the same ResNet, smp keys),
    so a pre-training checkpoint loads without conversion.

    Loading ``pretrained`` (in :meth:`init_weights`, i.e. when the Runner initialises the
    model for training; ``load_from``/``resume`` and ``tools/test.py`` checkpoints come
    after it and win): the file is read with ``weights_only=True`` through dira_mm's safe
    loader, the encoder is found (see :mod:`.pretrained`), and a key-match report is
    logged. Any missing, unexpected or mis-shaped key outside the head raises
    :class:`~dira_mm.utils.convert.WeightConversionError` with the report: a partial load
    is never silent. The U-Net decoder and reconstruction head of a DiRA checkpoint are
    not part of a classifier and are listed as unused.

    Training modes: full fine-tuning (default), a linear probe (``linear_probe=True``:
    the whole backbone is frozen, its BatchNorm layers stay in eval mode and it runs
    without autograd), or ``frozen_stages=k`` (the stem and stages ``1..k`` of the
    backbone's ``encoder_stages()``, ResNet's ``layer1..k``, frozen, their BatchNorm in
    eval mode).

    Images or volumes: the backbone's ``spatial_dims`` (a
    :class:`~dira_mm.models.backbones.BaseEncoderDecoder`; 2 for another module) says
    how many spatial axes an image has, so a batch is ``(B, C, *spatial)`` and a crop
    stack ``(B, N, C, *spatial)``; the data preprocessor must have the same
    ``spatial_dims``. Global average pooling runs over all spatial axes.

    ``forward`` modes: ``'tensor'`` gives logits ``(B, K)`` (``(B, N, K)`` for N crops),
    ``'loss'`` the masked BCE (labels < 0 ignored) of ``data_sample.gt_label``,
    ``'predict'`` data samples with ``pred_score`` (sigmoid, ``(K,)``): with N crops per
    image (inputs ``(B, N, C, H, W)`` or a list of N ``(B, C, H, W)``, e.g. ``TenCrop``)
    the sigmoid scores are averaged over the crops, as the benchmark's ten-crop test.

    Args:
        num_classes: number of findings (outputs).
        backbone: encoder config; it must provide ``forward_encoder(x)`` or return a
            feature map (or a list whose last item is the deepest map) from ``forward``.
            Defaults to the ResNet-50 encoder of DiRA's U-Net.
        in_channels: feature channels of the deepest map; read from
            ``backbone.out_channels`` when None.
        dropout: dropout probability before the head (0: none, as the benchmark).
        loss: loss config (``MaskedBCEWithLogitsLoss`` by default).
        pretrained: checkpoint of the encoder: a dira_mm pre-training checkpoint, an smp
            U-Net/encoder or a torchvision ResNet state dict (path, URL or
            ``torchvision://resnet50``). None: random initialisation.
        pretrained_prefix: where the U-Net sits in a dira_mm checkpoint (``'auto'``:
            ``ssl.backbone.`` then ``backbone.``).
        linear_probe: freeze the whole backbone (linear evaluation).
        frozen_stages: with a ResNet encoder, freeze the stem (0) and ``layer1..k``;
            -1 freezes nothing.
        head_init_std: standard deviation of the normal init of the head's weight (bias
            0); the benchmark's N(0, 0.01).
        data_preprocessor: defaults to ``ClsDataPreprocessor`` (gray -> 3 channels,
            ImageNet normalisation).
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 num_classes: int,
                 backbone: Optional[Union[dict, nn.Module]] = None,
                 in_channels: Optional[int] = None,
                 dropout: float = 0.0,
                 loss: Optional[Union[dict, nn.Module]] = None,
                 pretrained: Optional[str] = None,
                 pretrained_prefix: str = 'auto',
                 linear_probe: bool = False,
                 frozen_stages: int = -1,
                 head_init_std: float = 0.01,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if not isinstance(data_preprocessor, nn.Module):  # a config, ClsDataPreprocessor's
            data_preprocessor = {'type': 'ClsDataPreprocessor', **(data_preprocessor or {})}
        super().__init__(data_preprocessor=build_module(data_preprocessor), init_cfg=init_cfg)
        if int(num_classes) < 1:
            raise ValueError(f'MultiLabelClassifier: model.num_classes must be >= 1, '
                             f'got {num_classes}.')
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f'MultiLabelClassifier: model.dropout must be in [0, 1), '
                             f'got {dropout}.')
        self.num_classes = int(num_classes)
        self.backbone = build_module(dict(DEFAULT_BACKBONE) if backbone is None else backbone)
        self.spatial_dims = int(getattr(self.backbone, 'spatial_dims', 2))
        pre_dims = getattr(self.data_preprocessor, 'spatial_dims', None)
        if pre_dims is not None and pre_dims != self.spatial_dims:
            raise ValueError(
                f'MultiLabelClassifier: model.backbone ({type(self.backbone).__name__}) has '
                f'spatial_dims={self.spatial_dims} but model.data_preprocessor.spatial_dims='
                f'{pre_dims}; set them equal (2 for images, 3 for volumes).')
        if in_channels is None:
            out_channels = getattr(self.backbone, 'out_channels', None)
            if not out_channels:
                raise ValueError(
                    f'MultiLabelClassifier: {type(self.backbone).__name__} has no '
                    '`out_channels`; set model.in_channels to its feature channels.')
            in_channels = out_channels[-1] if isinstance(out_channels, Sequence) \
                else out_channels
        self.in_channels = int(in_channels)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(self.in_channels, self.num_classes)
        nn.init.normal_(self.head.weight, std=head_init_std)
        nn.init.zeros_(self.head.bias)
        self.loss_module = build_module(
            dict(type='MaskedBCEWithLogitsLoss') if loss is None else loss)
        self.pretrained = pretrained
        self.pretrained_prefix = pretrained_prefix
        self.pretrained_report: Optional[dict] = None
        self.linear_probe = bool(linear_probe)
        self.frozen_stages = int(frozen_stages)
        self._frozen = self._modules_to_freeze()
        for module in self._frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad_(False)

    # ------------------------------------------------------------------ freezing
    def _modules_to_freeze(self) -> List[nn.Module]:
        if self.linear_probe:
            return [self.backbone]
        if self.frozen_stages < 0:
            return []
        if not isinstance(self.backbone, BaseEncoderDecoder):
            raise ValueError(
                f'MultiLabelClassifier: model.frozen_stages={self.frozen_stages} needs a '
                f'BaseEncoderDecoder backbone (encoder_stages); {type(self.backbone).__name__} '
                'is not one. Use linear_probe=True to freeze any backbone.')
        try:
            return self.backbone.frozen_stage_modules(self.frozen_stages)
        except ValueError as err:
            raise ValueError(f'MultiLabelClassifier: model.{err}') from None

    def train(self, mode: bool = True) -> 'MultiLabelClassifier':
        """Set the mode; frozen parts (and their BatchNorm statistics) stay in eval mode."""
        super().train(mode)
        for module in self._frozen:
            module.eval()
        return self

    # ------------------------------------------------------------------ weights
    def init_weights(self) -> None:
        """mmengine's initialisation, then the ``pretrained`` encoder (if any)."""
        super().init_weights()
        if self.pretrained:
            self.load_pretrained(self.pretrained, self.pretrained_prefix)

    def load_pretrained(self, filename: str, prefix: str = 'auto') -> dict:
        """Load the encoder of ``filename`` (strictly, head excepted); return the report.

        The weights go through :func:`~dira_mm.models.utils.load_checked`; its report
        (plus ``source`` and ``unused``: the checkpoint's parts this model has no place
        for) is logged and kept in :attr:`pretrained_report`.

        Raises:
            FileNotFoundError: ``filename`` does not exist (named as ``model.pretrained``).
            WeightConversionError: a key outside the head is missing, unexpected or has
                another shape; the message is the report.
        """
        try:
            checkpoint = read_pretrained(filename)
        except FileNotFoundError as err:
            raise FileNotFoundError(f'model.pretrained: {err}') from None
        bb = self.backbone
        try:
            if uses_genesis_layout(bb):  # Models Genesis / TransVW files, module. etc.
                unet, source = unet_weights_for(bb, checkpoint, prefix)
                enc = tuple(bb.encoder_prefixes)
                weights = {k: v for k, v in unet.items() if k.startswith(enc)}
                unused = {k: v for k, v in unet.items() if not k.startswith(enc)}
            else:
                weights, unused, source = encoder_weights_from_checkpoint(
                    checkpoint, prefix, getattr(bb, 'encoder_prefixes', ('encoder.', )),
                    getattr(bb, 'decoder_prefixes', None))
        except WeightConversionError as err:
            raise WeightConversionError(f'model.pretrained "{filename}": {err}') from None
        if isinstance(bb, BaseEncoderDecoder):
            check_dimensionality(bb, weights, f'MultiLabelClassifier: model.pretrained '
                                 f'"{filename}"')
        # decoder/head weights load too if this backbone has them (e.g. with a decoder);
        # the others are reported as not used
        converted = {'backbone.' + k: v for k, v in {**weights, **unused}.items()}
        unused_patterns = [r'backbone\.' + re.escape(k) for k in unused]
        report = load_checked(
            self, converted, allowed_missing=_HEAD_KEYS, allowed_unexpected=unused_patterns,
            what=f'model.pretrained "{filename}" ({source})',
            target=f'{type(self).__name__} ({type(self.backbone).__name__} '
                   f'+ head of {self.num_classes})')
        report['unused'] = [k[len('backbone.'):] for k in report['allowed_unexpected']]
        report['source'] = source
        self.pretrained_report = report
        return report

    # ------------------------------------------------------------------ forward
    def feature_map(self, inputs: Tensor) -> Tensor:
        """The deepest feature map ``(B, in_channels, *spatial')`` of ``(B, C, *spatial)``.

        The head sees its global average, so ``head.weight @ feature_map`` is the class
        activation map (see :mod:`dira_mm.visualization.cam`).
        """
        forward = getattr(self.backbone, 'forward_encoder', self.backbone)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.linear_probe):
            feats = forward(inputs)
        if isinstance(feats, (list, tuple)):
            feats = feats[-1]
        return feats

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Pooled features ``(B, in_channels)`` of images ``(B, C, *spatial)`` (the mean
        over every spatial axis)."""
        return self.feature_map(inputs).flatten(2).mean(dim=2)

    def _logits(self, inputs: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs), dim=1)
        if inputs.dim() == self.spatial_dims + 3:  # (B, N crops, C, *spatial)
            batch, crops = inputs.shape[:2]
            return self._logits(inputs.flatten(0, 1)).unflatten(0, (batch, crops))
        return self.head(self.dropout(self.extract_feat(inputs)))

    def forward(self,
                inputs: Union[Tensor, Sequence[Tensor]],
                data_samples: Optional[List[DiRADataSample]] = None,
                mode: str = 'tensor'):
        """Dispatch on ``mode``: ``'tensor'``, ``'loss'`` or ``'predict'`` (see class doc)."""
        if mode == 'tensor':
            return self._logits(inputs)
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        raise ValueError(f'MultiLabelClassifier: unknown mode "{mode}"; choose one of {_MODES}.')

    def loss(self, inputs: Tensor, data_samples: List[DiRADataSample]) -> Dict[str, Tensor]:
        """Masked BCE of one training batch ``(B, C, *spatial)``."""
        if isinstance(inputs, (list, tuple)) or inputs.dim() != self.spatial_dims + 2:
            raise ValueError(
                'MultiLabelClassifier: training takes one image per sample (B, C, *spatial) '
                f'with spatial_dims={self.spatial_dims} spatial axes; multi-crop inputs '
                '(TenCrop) are for validation and test pipelines.')
        logits = self._logits(inputs)
        labels = self._stack_labels(data_samples, logits)
        return dict(loss=self.loss_module(logits, labels))

    def predict(self, inputs: Union[Tensor, Sequence[Tensor]],
                data_samples: Optional[List[DiRADataSample]] = None
                ) -> List[DiRADataSample]:
        """Data samples with ``pred_score`` (per-class sigmoid, averaged over crops)."""
        scores = self._logits(inputs).sigmoid()
        if scores.dim() == 3:
            scores = scores.mean(dim=1)
        if data_samples is None:
            data_samples = [DiRADataSample() for _ in range(scores.shape[0])]
        for sample, score in zip(data_samples, scores.detach()):
            sample.pred_score = score
        return data_samples

    def _stack_labels(self, data_samples: Optional[List[DiRADataSample]],
                      logits: Tensor) -> Tensor:
        if not data_samples or 'gt_label' not in data_samples[0]:
            raise ValueError('MultiLabelClassifier: the batch has no gt_label; the dataset '
                             'must give labels and the pipeline end with PackClsInputs.')
        labels = torch.stack([torch.as_tensor(s.gt_label) for s in data_samples])
        if labels.shape[-1] != self.num_classes:
            raise ValueError(
                f'MultiLabelClassifier: the labels have {labels.shape[-1]} classes but '
                f'model.num_classes is {self.num_classes}; set num_classes to the dataset\'s '
                'number of classes (or select classes with ClassSubsetDataset).')
        return labels.to(device=logits.device, dtype=logits.dtype)
