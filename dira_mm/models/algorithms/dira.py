"""DiRA (Haghighi et al., CVPR 2022): discriminative + restorative + adversarial SSL."""
from collections import OrderedDict
from contextlib import contextmanager
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.model import BaseModel, is_model_wrapper
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import Tensor, nn

from dira_mm.registry import ALGORITHMS, MODELS
from ..utils import DiRADataPreprocessor, unwrap
from ..utils.builder import build_module
from ..utils.nonfinite import NonFiniteLossCheckMixin
from ..utils.spatial import spatial_dims_conflict


@contextmanager
def _frozen(module: nn.Module):
    """Temporarily stop gradients into ``module``'s parameters."""
    flags = [p.requires_grad for p in module.parameters()]
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, f in zip(module.parameters(), flags):
            p.requires_grad_(f)


@ALGORITHMS.register_module()
class DiRA(NonFiniteLossCheckMixin, BaseModel):
    """Unites a discriminative SSL method with restoration and adversarial training.

    DiRA is a composition, not a method of its own: ``discriminative`` is any
    :class:`BaseSelfSupervisor` (MoCo-v2, ...); ``restorative`` adds a restoration loss
    on the U-Net decoder's output for view ``restore_view``; ``adversarial`` adds a
    discriminator that judges restorations against the undistorted targets. The three
    official modes are configs: ``di`` (discriminative only), ``dir`` (+ restorative),
    ``dira`` (+ adversarial).

    Generator loss ``λ_dis·L_dis + λ_res·L_res + λ_adv·L_adv`` (official 1 / 10 / 0.001).
    Each iteration with the adversary on: one generator step (the discriminator frozen,
    so it takes no gradient from it), then one discriminator step on the detached
    restoration and the target (real and fake in one forward: InstanceNorm is
    per-sample, so this equals two forwards).

    Images and volumes alike: the backbone (through its protocol), neck, data
    preprocessor, restorative head and discriminator each take ``spatial_dims``; parts
    that disagree make the build fail with the config keys named (e.g. a 3-D backbone
    with the default 2-D ``PatchDiscriminator``: set
    ``model.adversarial.discriminator.spatial_dims=3``).

    Args:
        discriminative: config of the SSL algorithm (owns backbone, neck, head).
        restorative: ``RestorativeHead`` config, or None.
        adversarial: ``dict(discriminator=..., loss=dict(type='LSGANLoss'))`` or None.
        loss_weights: ``dict(dis=1., res=10., adv=0.001)``.
        restore_view: which view is restored (official: the query, view 0).
        adversarial_enabled: start with the adversarial term on (a ``DiRAStageHook``
            switches it per epoch for the staged warm-up).
        official_val: validate as the official code does: the momentum update and
            the queue update also run in validation (the default leaves both untouched).
        data_preprocessor: defaults to ``DiRADataPreprocessor`` with the backbone's
            ``spatial_dims``; a configured one must agree with the backbone.
    """

    #: Model keys a ``load_from`` checkpoint may lack (checked by ``CheckedLoadHook``): the
    #: official two-run flow initialises a ``dira`` model from a ``dir`` (warm-up)
    #: checkpoint, which has no discriminator; the discriminator starts fresh.
    load_from_allowed_missing = (r'discriminator\..*', )

    def __init__(self,
                 discriminative: dict,
                 restorative: Optional[dict] = None,
                 adversarial: Optional[dict] = None,
                 loss_weights: Optional[Dict[str, float]] = None,
                 restore_view: int = 0,
                 adversarial_enabled: bool = True,
                 official_val: bool = False,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if isinstance(discriminative, dict):
            discriminative = dict(discriminative)
            # The DiRA model preprocesses once; the inner algorithm needs none.
            discriminative.setdefault('data_preprocessor', dict(type='BaseDataPreprocessor'))
        ssl = build_module(discriminative)
        if data_preprocessor is None:
            # not configured: the default follows the backbone (spatial_dims, channels)
            data_preprocessor = ssl.backbone.default_data_preprocessor()
        super().__init__(data_preprocessor=build_module(data_preprocessor), init_cfg=init_cfg)
        weights = dict(dis=1.0, res=10.0, adv=0.001)
        unknown = set(loss_weights or {}) - set(weights)
        if unknown:
            raise KeyError(f'DiRA: unknown loss_weights keys {sorted(unknown)}; '
                           'use dis, res and adv.')
        weights.update(loss_weights or {})
        self.loss_weights = weights
        self.ssl = ssl
        self.restorative = build_module(restorative)
        if adversarial is not None and restorative is None:
            raise ValueError('DiRA: model.adversarial needs model.restorative (the '
                             'discriminator judges restorations); add a RestorativeHead.')
        if restorative is not None and not self.ssl.backbone.with_decoder:
            raise ValueError('DiRA: model.restorative needs a backbone with a decoder; set '
                             'model.discriminative.backbone.with_decoder=True.')
        self.discriminator = None
        self.adv_loss = None
        if adversarial is not None:
            adversarial = dict(adversarial)
            if 'discriminator' not in adversarial:
                raise KeyError('DiRA: model.adversarial needs a discriminator config.')
            self.discriminator = build_module(adversarial['discriminator'])
            self.adv_loss = build_module(adversarial.get('loss', dict(type='LSGANLoss')))
        spatial_dims_conflict(
            {'model.discriminative.backbone': self.ssl.backbone,
             'model.discriminative.neck': getattr(self.ssl, 'neck', None),
             'model.discriminative.head': getattr(self.ssl, 'head', None),
             'model.data_preprocessor': self.data_preprocessor,
             'model.restorative': self.restorative,
             'model.adversarial.discriminator': self.discriminator}, 'DiRA')
        self.restore_view = restore_view
        self.adversarial_enabled = adversarial_enabled
        self.official_val = official_val

    def state_dict(self, *args, destination=None, prefix: str = '', keep_vars: bool = False):
        """The state dict with the same keys at any world size.

        Under ``MMSeparateDistributedDataParallel`` the children are DDP-wrapped and torch
        would insert ``.module.`` into their keys (``ssl.module.queue``); the checkpoint of a
        4-GPU run must load into a 1-process model (and the exporters) unchanged, so the
        wrapper segment is dropped. mmengine's loader unwraps children when loading.
        """
        sd = super().state_dict(*args, destination=destination, prefix=prefix,
                                keep_vars=keep_vars)
        wrapped = [n for n, c in self._modules.items() if c is not None and is_model_wrapper(c)]
        if not wrapped:
            return sd
        out = OrderedDict()
        for key, value in sd.items():
            for name in wrapped:
                head = f'{prefix}{name}.module.'
                if key.startswith(head):
                    key = f'{prefix}{name}.' + key[len(head):]
                    break
            out[key] = value
        meta = getattr(sd, '_metadata', None)
        if meta is not None:
            out._metadata = meta
        return out

    # ----------------------------------------------------------------- properties
    @property
    def with_restorative(self) -> bool:
        return self.restorative is not None

    @property
    def with_adversarial(self) -> bool:
        return self.discriminator is not None

    @property
    def adversarial_active(self) -> bool:
        """The adversarial term is part of the loss in this iteration."""
        return self.with_adversarial and self.adversarial_enabled

    # ----------------------------------------------------------------- losses
    def _generator_losses(self, inputs: List[Tensor], data_samples: Optional[list],
                          update_state: bool = True
                          ) -> Tuple[Dict[str, Tensor], Optional[Tensor], Optional[Tensor]]:
        """Weighted generator losses, the reconstruction and its target."""
        w = self.loss_weights
        if self.with_restorative:
            ssl_losses, rec = self.ssl(inputs, data_samples, mode='restore',
                                       restore_view=self.restore_view,
                                       update_state=update_state)
        else:
            ssl_losses = self.ssl(inputs, data_samples, mode='loss', update_state=update_state)
            rec = None
        losses = {k: (v * w['dis'] if 'loss' in k else v) for k, v in ssl_losses.items()}
        target = None
        if rec is not None:
            target = DiRADataPreprocessor.stack_targets(data_samples)
            if target is None:
                raise ValueError('DiRA: the restorative head needs data_sample.target; use '
                                 'DiRAViews(with_target=True) and PackDiRAInputs in the pipeline.')
            losses['loss_res'] = w['res'] * self.restorative.loss(rec, target)
            if self.adversarial_active:
                disc = unwrap(self.discriminator)
                with _frozen(disc):
                    fake_pred = disc(rec)
                losses['loss_adv'] = w['adv'] * self.adv_loss.generator_loss(fake_pred)
        return losses, rec, target

    def loss(self, inputs: List[Tensor], data_samples: Optional[list] = None) -> Dict[str, Tensor]:
        """Generator losses of one batch (no discriminator step)."""
        return self._generator_losses(inputs, data_samples)[0]

    def discriminator_loss(self, rec: Tensor, target: Tensor) -> Tensor:
        """LSGAN loss of the discriminator on targets (real) and detached restorations."""
        n = target.shape[0]
        both = torch.cat([target, rec.detach().to(target.dtype)], dim=0)
        pred = self.discriminator(both)
        real_pred, fake_pred = pred[:n], pred[n:]
        return self.adv_loss.discriminator_loss(real_pred, fake_pred)

    # ----------------------------------------------------------------- steps
    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: Union[OptimWrapper, OptimWrapperDict]) -> Dict[str, Tensor]:
        """Generator step, then (adversarial stage) discriminator step."""
        if isinstance(optim_wrapper, OptimWrapperDict):
            if 'generator' not in optim_wrapper:
                raise KeyError('DiRA: optim_wrapper needs a "generator" entry '
                               f'(got {list(optim_wrapper.keys())}).')
            g_wrapper = optim_wrapper['generator']
            d_wrapper = optim_wrapper['discriminator'] if 'discriminator' in optim_wrapper \
                else None
        else:
            g_wrapper, d_wrapper = optim_wrapper, None
        use_adv = self.adversarial_active
        if use_adv and d_wrapper is None:
            raise KeyError('DiRA: the adversarial stage needs optim_wrapper.discriminator; use '
                           "optim_wrapper=dict(constructor='MultiOptimWrapperConstructor', "
                           'generator=..., discriminator=...).')

        with g_wrapper.optim_context(self.ssl):
            data = self.data_preprocessor(data, True)
            losses, rec, target = self._generator_losses(data['inputs'], data['data_samples'])
        # a NaN/Inf loss term stops the run or skips the step (NonFiniteCheckHook)
        g_key = ('optim_wrapper.generator' if isinstance(optim_wrapper, OptimWrapperDict)
                 else 'optim_wrapper')
        g_loss, log_vars = self.parse_losses(losses, 'generator', g_key)
        self.update_if_finite(g_wrapper, g_loss)

        if use_adv:
            with d_wrapper.optim_context(self.discriminator):
                d_loss = self.discriminator_loss(rec, target)
            _, d_log = self.parse_losses(dict(loss_d=d_loss), 'discriminator',
                                         'optim_wrapper.discriminator')
            self.update_if_finite(d_wrapper, d_loss)
            if 'loss_d' in d_log:  # absent when the step was skipped as non-finite
                log_vars['loss_d'] = d_log['loss_d']
        return log_vars

    @torch.no_grad()
    def _eval_step(self, data: Union[dict, tuple, list]) -> List[dict]:
        data = self.data_preprocessor(data, False)
        inputs, data_samples = data['inputs'], data['data_samples']
        if self.official_val:
            # The official forward runs the momentum update and enqueues the keys, in
            # validation too.
            unwrap(self.ssl).momentum_update()
        losses, _, _ = self._generator_losses(inputs, data_samples,
                                              update_state=self.official_val)
        total = sum(v for k, v in losses.items() if 'loss' in k)
        out = {k: float(v) for k, v in losses.items()}
        out.update(loss=float(total), batch_size=int(inputs[0].shape[0]))
        return [out]

    def val_step(self, data: Union[dict, tuple, list]) -> List[dict]:
        """Validation loss of a batch: the same weighted loss as training."""
        return self._eval_step(data)

    def test_step(self, data: Union[dict, tuple, list]) -> List[dict]:
        """Same as :meth:`val_step`."""
        return self._eval_step(data)

    def forward(self, inputs: Union[Tensor, List[Tensor]], data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        """``tensor``: encoder features of the first view; ``loss``: generator losses;
        ``predict``: the reconstruction of the first view."""
        if isinstance(inputs, Tensor):
            inputs = [inputs]
        ssl = unwrap(self.ssl)
        if mode == 'tensor':
            return ssl.extract_feat(inputs[0])
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return ssl.backbone(inputs[0])
        raise ValueError(f"DiRA.forward: unknown mode {mode!r} (tensor, loss or predict)")
