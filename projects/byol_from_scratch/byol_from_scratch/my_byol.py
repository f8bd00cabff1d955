"""MyBYOL: BYOL (Grill et al., NeurIPS 2020) written from scratch as a dira_mm plug-in.

The worked example of ``docs/tutorials/add_an_ssl_method.md``. It lives outside the
``dira_mm`` package; a config loads it with
``custom_imports = dict(imports=['byol_from_scratch'], allow_failed_imports=False)``, and
DiRA's restorative and adversarial parts then work on it by config alone.
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dira_mm.models import BaseSelfSupervisor, MomentumEncoder, convert_global_batchnorm
from dira_mm.registry import MODELS


@MODELS.register_module()  # a config can now say type='MyBYOL'
class MyBYOL(BaseSelfSupervisor):
    """An online network predicts the projection that a slow EMA target makes of the
    other view.

    - online: view -> encoder -> projector (``neck``) -> predictor -> ``q``
    - target: view -> EMA encoder -> EMA projector -> ``t`` (no gradient)
    - loss: ``d(q1, t2) + d(q2, t1)`` with ``d(q, t) = mean_n (2 - 2 cos(q_n, t_n))``

    Args:
        backbone: encoder-decoder config (``ResNetUNet``). The method uses the encoder
            only; DiRA decodes the same encoder features for restoration.
        neck: projector config (``NonLinearNeck``).
        predictor_channels: widths ``(in, hidden, out)`` of the predictor MLP; ``in``
            and ``out`` are the projector's output width.
        base_momentum: EMA momentum at the start; ``MomentumUpdateHook(end_momentum=1.0)``
            raises it to 1 on a cosine over training.
        data_preprocessor, global_bn, init_cfg: as in ``BaseSelfSupervisor``.
    """

    # The loss needs online (gradient) encoder features of views 0 and 1.
    online_views = (0, 1)

    def __init__(self,
                 backbone: Union[dict, nn.Module],
                 neck: Union[dict, nn.Module],
                 predictor_channels: Sequence[int] = (256, 4096, 256),
                 base_momentum: float = 0.996,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 global_bn: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        # No registered head: the predictor and the loss are written out below.
        super().__init__(backbone, neck, head=None, data_preprocessor=data_preprocessor,
                         global_bn=global_bn, init_cfg=init_cfg)
        c_in, c_hid, c_out = predictor_channels
        self.predictor = nn.Sequential(
            nn.Linear(c_in, c_hid), nn.BatchNorm1d(c_hid), nn.ReLU(inplace=True),
            nn.Linear(c_hid, c_out))
        if self.global_bn:  # the base class converted only backbone, neck and head
            self.predictor = convert_global_batchnorm(self.predictor)
        # Target network: a frozen copy of encoder + projector, moved by EMA only.
        # The hook finds it by the name ``momentum_encoder``.
        self.momentum_encoder = MomentumEncoder(self.online_network(), base_momentum)

    def online_network(self) -> nn.Sequential:
        """The online modules the target mirrors: encoder, then projector.

        A new ``Sequential`` over the same modules (no copy): the encoder returns its
        list of stage features and the projector pools the last one.
        """
        return nn.Sequential(self.backbone.encoder, self.neck)

    def discriminative_loss(self, inputs: List[Tensor], feats: Dict[int, List[Tensor]],
                            data_samples: Optional[list] = None,
                            update_state: bool = True) -> Dict[str, Tensor]:
        """Symmetric BYOL loss of views 0 and 1.

        ``feats[v]`` are the online encoder features of ``inputs[v]``, computed once by
        the base class (DiRA decodes the same ones). ``update_state`` is for state the
        loss itself changes, such as a MoCo queue; BYOL's only state is the target,
        which the hook moves, so it is unused here.
        """
        q1 = self.predictor(self.neck(feats[0]))
        q2 = self.predictor(self.neck(feats[1]))
        with torch.no_grad():  # stop-gradient on the target branch
            t1 = self.momentum_encoder(inputs[0])
            t2 = self.momentum_encoder(inputs[1])
        return dict(loss_dis=self.regression_loss(q1, t2) + self.regression_loss(q2, t1))

    @staticmethod
    def regression_loss(q: Tensor, t: Tensor) -> Tensor:
        """``mean_n |q_n/|q_n| - t_n/|t_n||^2``, which is ``mean_n (2 - 2 cos(q_n, t_n))``."""
        q = F.normalize(q, dim=1)
        t = F.normalize(t, dim=1)
        return (2 - 2 * (q * t).sum(dim=1)).mean()

    # ---- target network: started equal to the online one, then moved by EMA
    def init_weights(self) -> None:
        """Initialise the online network, then start the target equal to it."""
        super().init_weights()
        self.momentum_encoder.copy_from(self.online_network())

    def momentum_update(self, momentum: Optional[float] = None) -> None:
        """``target = m * target + (1 - m) * online``; the hook calls it after each step."""
        self.momentum_encoder.update(self.online_network(), momentum)

    @property
    def momentum(self) -> float:
        """The EMA momentum; ``MomentumUpdateHook`` starts its schedule from it."""
        return self.momentum_encoder.momentum
