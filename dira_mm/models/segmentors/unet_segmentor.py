"""Segmentation fine-tuning of the pre-trained U-Net (encoder + decoder) of a dira_mm model."""
import re
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from torch import Tensor, nn

from dira_mm.registry import MODELS
from dira_mm.structures import SegDataSample
from dira_mm.utils.convert import WeightConversionError
from ..backbones.base_backbone import BaseEncoderDecoder
from ..utils.load_checked import load_checked
from ..utils.nonfinite import NonFiniteLossCheckMixin
from ..utils.pretrained import read_pretrained
from .seg_data_preprocessor import SegDataPreprocessor
from .sliding_window import check_test_cfg, sliding_window_logits
from ..utils.backbone_weights import check_dimensionality, unet_weights_for

__all__ = ['UNetSegmentor']

_INITS = ('encoder_decoder', 'encoder')
#: the backbone when the config names none (the official DiRA U-Net)
DEFAULT_BACKBONE = dict(type='ResNetUNet', encoder_name='resnet50')


@MODELS.register_module()
class UNetSegmentor(NonFiniteLossCheckMixin, BaseModel):
    """A pre-trained U-Net for binary / multi-label segmentation, sigmoid outputs.

    The backbone is any :class:`~dira_mm.models.backbones.BaseEncoderDecoder` (default
    the smp ResNet-50 U-Net, :class:`ResNetUNet`; a 3-D one such as ``ResNetUNet3D``
    segments volumes), used only through its protocol: its encoder is frozen through
    ``encoder_module()``, input sizes are checked against ``input_multiple``, and a
    checkpoint is split into encoder and decoder with its state-dict prefixes. The data
    preprocessor's ``spatial_dims`` must equal the backbone's.

    **Initialisation from pre-training.** ``pretrained`` is a dira_mm checkpoint (a DiRA
    model: ``ssl.backbone.*``; a plain method: ``backbone.*``), a fine-tuned segmentor,
    a bare ``smp.Unet`` state dict (the official DiRA ``best_checkpoint.pth``, or
    ``tools/model_converters/extract_unet.py --format smp`` output) or a torchvision ResNet
    state dict (encoder only: use ``init='encoder'``); DDP ``module.`` prefixes are
    stripped. The layouts are those of :class:`MultiLabelClassifier`. It is read safely
    (``weights_only``) in :meth:`init_weights`, which mmengine's Runner calls before
    training. ``init='encoder_decoder'`` (the DiRA README's protocol) loads encoder and
    decoder, ``'encoder'`` the encoder only (decoder left random, e.g. from a ``di``
    checkpoint that has no decoder). The segmentation head, which was the restoration
    head in pre-training, is always new, with ``num_classes`` outputs. A key-match report
    is logged; any missing, unexpected or differently shaped key beyond the head (and the
    decoder with ``init='encoder'``) raises :class:`WeightConversionError` with the report:
    a partial load is never silent. Without ``pretrained`` the network starts from random
    weights (the "Random" baseline) and a warning says so.

    **Outputs.** The head gives logits; probabilities are their sigmoid (the official
    network has the sigmoid inside its head: the same function). ``loss``: Dice loss on the
    probabilities (official: over the whole batch, smoothing 1) plus, with
    ``bce_weight > 0``, that weight times the binary cross-entropy. ``predict``: one
    :class:`SegDataSample` per image (or volume) with ``pred_prob`` (float
    ``(C, *spatial)``) and ``pred_mask`` (uint8, ``pred_prob > threshold``) at the input
    resolution, the network run as ``test_cfg`` says (whole input, or MONAI's sliding
    window for whole CT volumes). ``tensor``: the logits ``(N, C, *spatial)``.

    Args:
        backbone: backbone config; without ``type`` it extends ``ResNetUNet(encoder_name=
            'resnet50')`` (``encoder_name``, ``decoder_channels``, ...). Its
            ``out_channels``, ``activation`` and ``with_decoder`` are set here
            (``num_classes``, None, True), so its constructor must take them (all shipped
            backbones do).
        num_classes: output channels (1 for a binary mask).
        pretrained: checkpoint path or URL to initialise from, or None.
        init: ``'encoder_decoder'`` or ``'encoder'``: what ``pretrained`` initialises.
        prefix: key prefix of the U-Net in the checkpoint; ``'auto'`` tries
            ``ssl.backbone.``, ``backbone.``, then none (a bare smp state dict).
        freeze_encoder: train the decoder and head only; the encoder's parameters get no
            gradient and its BatchNorm statistics stay fixed (eval mode).
        loss_dice: Dice loss config (``DiceLoss``), or None for BCE only.
        bce_weight: weight of the binary cross-entropy added to the Dice loss (0: none, as
            officially).
        threshold: probability above which ``pred_mask`` is foreground.
        data_preprocessor: defaults to ``SegDataPreprocessor`` (gray to 3 channels, [0, 1]).
        test_cfg: how ``predict`` runs the network (mmseg's name and modes):
            ``dict(mode='whole')`` (default) one forward pass of the whole input;
            ``dict(mode='slide', roi_size=(64, 64, 32), overlap=0.5, sw_batch_size=4,
            blend_mode='gaussian', sigma_scale=0.125, padding_mode='constant')`` MONAI's
            ``sliding_window_inference`` over windows of ``roi_size`` (each a multiple of
            the backbone's ``input_multiple``), blended by a Gaussian or constant weight;
            whole CT volumes are segmented this way. See :mod:`.sliding_window`.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 backbone: Optional[dict] = None,
                 num_classes: int = 1,
                 pretrained: Optional[str] = None,
                 init: str = 'encoder_decoder',
                 prefix: str = 'auto',
                 freeze_encoder: bool = False,
                 loss_dice: Optional[dict] = dict(type='DiceLoss', smooth=1.0),
                 bce_weight: float = 0.0,
                 threshold: float = 0.5,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if not isinstance(data_preprocessor, nn.Module):
            data_preprocessor = MODELS.build(
                dict(dict(type='SegDataPreprocessor'), **(data_preprocessor or {})))
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if init not in _INITS:
            raise ValueError(f'UNetSegmentor: `init` must be one of {_INITS}, got {init!r}.')
        if loss_dice is None and bce_weight <= 0:
            raise ValueError('UNetSegmentor: no loss; set `loss_dice` or `bce_weight > 0`.')
        backbone = dict(backbone or {})
        if 'type' not in backbone:
            backbone = dict(DEFAULT_BACKBONE, **backbone)
        for key, value in (('out_channels', num_classes), ('activation', None)):
            if backbone.get(key, value) != value:
                raise ValueError(
                    f'UNetSegmentor: model.backbone.{key}={backbone[key]!r} conflicts with the '
                    f'segmentor, which sets it to {value!r} (`num_classes` outputs, logits).')
        backbone.update(out_channels=int(num_classes), activation=None, with_decoder=True)
        self.backbone = MODELS.build(backbone)
        if not isinstance(self.backbone, BaseEncoderDecoder):
            raise TypeError(
                'UNetSegmentor: model.backbone must be a BaseEncoderDecoder (the backbone '
                f'protocol, e.g. ResNetUNet), got {type(self.backbone).__name__}.')
        if getattr(self.data_preprocessor, 'spatial_dims', None) not in (
                None, self.backbone.spatial_dims):
            raise ValueError(
                f'UNetSegmentor: model.backbone ({type(self.backbone).__name__}) has '
                f'spatial_dims={self.backbone.spatial_dims} but model.data_preprocessor.'
                f'spatial_dims={self.data_preprocessor.spatial_dims}; set them equal '
                '(2 for images, 3 for volumes).')
        self.num_classes = int(num_classes)
        self.pretrained = pretrained
        self.init = init
        self.prefix = prefix
        self.freeze_encoder = bool(freeze_encoder)
        self.loss_dice = MODELS.build(loss_dice) if loss_dice is not None else None
        self.bce_weight = float(bce_weight)
        self.threshold = float(threshold)
        self.pretrained_report: Optional[dict] = None
        self.test_cfg = check_test_cfg(test_cfg, self.backbone, 'UNetSegmentor')
        if self.freeze_encoder:
            self.backbone.encoder_module().requires_grad_(False)
            self.backbone.encoder_module().eval()

    # ------------------------------------------------------------------ weights
    def init_weights(self) -> None:
        """mmengine initialisation, then the pre-trained U-Net weights (see the class doc)."""
        super().init_weights()
        if self.pretrained:
            self.load_pretrained(self.pretrained)
        else:
            MMLogger.get_current_instance().warning(
                'UNetSegmentor: no `model.pretrained` checkpoint; training from random '
                'weights (the "Random" baseline).')

    def load_pretrained(self, checkpoint: Union[str, dict]) -> dict:
        """Load encoder (+ decoder) weights from ``checkpoint`` (a path, URL or loaded dict).

        The checkpoint layouts of the classifier are understood (a dira_mm checkpoint, an
        smp or torchvision state dict, DDP ``module.`` prefixes; see
        :func:`~dira_mm.models.utils.unet_weights_from_checkpoint`) and the weights go
        through :func:`~dira_mm.models.utils.load_checked`.

        Returns:
            dict: the key-match report of :func:`~dira_mm.models.utils.load_checked`
            (also kept as ``self.pretrained_report``).

        Raises:
            WeightConversionError: no U-Net in the checkpoint, or keys that do not match
                beyond what is re-initialised; the message holds the report.
        """
        source = checkpoint if isinstance(checkpoint, str) else '<state dict>'
        if isinstance(checkpoint, str):
            if '://' not in checkpoint and not osp.isfile(checkpoint):
                raise FileNotFoundError(
                    f'UNetSegmentor: `model.pretrained` "{checkpoint}" does not exist. Set it '
                    'to a pre-training checkpoint (e.g. work_dirs/<run>/epoch_N.pth), or to '
                    'None to train from random weights.')
            checkpoint = read_pretrained(checkpoint)
        try:
            unet, fmt = unet_weights_for(self.backbone, checkpoint, self.prefix)
        except WeightConversionError as err:
            raise WeightConversionError(f'model.pretrained "{source}": {err}') from None
        bb = self.backbone
        check_dimensionality(bb, unet, f'UNetSegmentor: model.pretrained "{source}"')
        enc_prefixes, dec_prefixes = tuple(bb.encoder_prefixes), tuple(bb.decoder_prefixes)
        # the output head (the decoder prefix of the head, smp's ``segmentation_head.``) is
        # new: ``num_classes`` outputs, where pre-training restored the image
        head_prefixes = tuple(bb.head_prefixes)
        body_prefixes = tuple(p for p in dec_prefixes if p not in head_prefixes)
        kept = enc_prefixes if self.init == 'encoder' else enc_prefixes + body_prefixes
        # torchvision's ``fc`` (encoder.fc.*: its ImageNet head) has no place in a U-Net
        fc = tuple(p + 'fc.' for p in enc_prefixes)
        weights = {k: v for k, v in unet.items() if k.startswith(kept) and not k.startswith(fc)}
        allowed = [re.escape(p) + '.*' for p in head_prefixes]
        if self.init == 'encoder':
            allowed += [re.escape(p) + '.*' for p in body_prefixes]
        left_out = sorted({'.'.join(k.split('.')[:2 if bb.is_encoder_key(k) else 1])
                           for k in unet if k not in weights})
        what = (f'Pre-trained U-Net from "{source}" ({fmt}; not loaded: '
                f'{left_out or "nothing"}; the segmentation head is new)')
        try:
            report = load_checked(
                self.backbone, weights, allowed_missing=allowed, what=what,
                target=f'UNetSegmentor({bb.arch_name}, init={self.init!r})')
        except WeightConversionError as err:
            missing = err.report['missing']
            if missing and all(bb.is_decoder_key(k) for k in missing):
                raise WeightConversionError(
                    f"{err}\nThe checkpoint has no decoder (a `di` model?): set "
                    "model.init='encoder' to load its encoder only.") from None
            raise
        self.pretrained_report = report
        return report

    def train(self, mode: bool = True) -> 'UNetSegmentor':
        """Train mode; a frozen encoder stays in eval mode (fixed BatchNorm statistics)."""
        super().train(mode)
        if self.freeze_encoder:
            self.backbone.encoder_module().eval()
        return self

    # ------------------------------------------------------------------ forward
    def forward(self, inputs: Tensor, data_samples: Optional[List[SegDataSample]] = None,
                mode: str = 'tensor') -> Union[Tensor, Dict[str, Tensor], List[SegDataSample]]:
        """``mode``: ``'tensor'`` (logits), ``'loss'`` (dict) or ``'predict'`` (samples).

        ``'predict'`` runs the network as ``test_cfg`` says (whole input or sliding window);
        the other modes take the whole input.
        """
        if mode == 'predict':
            return self.predict(self.inference(inputs), data_samples)
        logits = self.extract_logits(inputs)
        if mode == 'tensor':
            return logits
        if mode == 'loss':
            return self.loss(logits, data_samples)
        raise RuntimeError(f'UNetSegmentor: invalid mode "{mode}" (tensor, loss or predict).')

    def extract_logits(self, inputs: Tensor) -> Tensor:
        """The U-Net's logits ``(N, num_classes, *spatial)``.

        Raises:
            ValueError: the input has another dimensionality than the backbone, or a
                spatial size is not a multiple of the backbone's ``input_multiple`` (the
                U-Net's skip connections need it; 32 per axis for a depth-5 ResNet).
        """
        self.backbone.check_input(inputs)
        multiple = tuple(int(m) for m in self.backbone.input_multiple)
        sizes = tuple(int(s) for s in inputs.shape[2:])
        if any(s % m for s, m in zip(sizes, multiple)):
            shown = multiple[0] if len(set(multiple)) == 1 else 'x'.join(map(str, multiple))
            raise ValueError(f'UNetSegmentor: input {"x".join(map(str, sizes))} is not a '
                             f'multiple of {shown}; resize to such a size in the pipeline '
                             '(SegResize).')
        return self.backbone(inputs)

    def inference(self, inputs: Tensor) -> Tensor:
        """Logits of ``inputs`` by ``test_cfg``: one pass (``'whole'``) or MONAI's sliding
        window (``'slide'``, any input size: windows are padded where the input is smaller
        than ``roi_size``)."""
        if self.test_cfg['mode'] == 'whole':
            return self.extract_logits(inputs)
        self.backbone.check_input(inputs)
        return sliding_window_logits(self.extract_logits, inputs, self.test_cfg)

    def loss(self, logits: Tensor, data_samples: Sequence[SegDataSample]) -> Dict[str, Tensor]:
        """Dice loss (and weighted BCE) of the batch."""
        target = SegDataPreprocessor.stack_masks(list(data_samples))
        if target.shape != logits.shape:
            raise ValueError(f'UNetSegmentor: masks {tuple(target.shape)} do not match the '
                             f'outputs {tuple(logits.shape)} (num_classes={self.num_classes}).')
        losses = {}
        if self.loss_dice is not None:
            losses['loss_dice'] = self.loss_dice(logits.sigmoid(), target)
        if self.bce_weight > 0:
            losses['loss_bce'] = self.bce_weight * F.binary_cross_entropy_with_logits(
                logits, target)
        return losses

    @torch.no_grad()
    def predict(self, logits: Tensor,
                data_samples: Optional[Sequence[SegDataSample]] = None) -> List[SegDataSample]:
        """Per-image probability maps and masks, into (copies of) ``data_samples``."""
        probs = logits.sigmoid().float()
        if data_samples is None:
            data_samples = [SegDataSample() for _ in range(len(probs))]
        for sample, prob in zip(data_samples, probs):
            sample.pred_prob = prob
            sample.pred_mask = (prob > self.threshold).to(torch.uint8)
        return list(data_samples)
