"""Least-squares GAN loss (Mao et al., 2017), the adversarial loss of DiRA."""
import torch
from mmengine.model import BaseModule
from torch import Tensor

from dira_mm.registry import LOSSES
from ..utils.float32 import run_in_float32


@LOSSES.register_module()
class LSGANLoss(BaseModule):
    """MSE of discriminator outputs against constant labels.

    Generator: ``mean((D(fake) - real_label)^2)``.
    Discriminator: ``0.5 * [mean((D(real) - real_label)^2) + mean((D(fake) - fake_label)^2)]``.

    Args:
        real_label: target for real images (official 1).
        fake_label: target for restored images (official 0).
    """

    def __init__(self, real_label: float = 1.0, fake_label: float = 0.0) -> None:
        super().__init__()
        self.real_label = real_label
        self.fake_label = fake_label

    @staticmethod
    def _mse_to(pred: Tensor, value: float) -> Tensor:
        return torch.mean((pred - value) ** 2)

    @run_in_float32
    def generator_loss(self, fake_pred: Tensor) -> Tensor:
        """Loss that pushes restorations to be judged real."""
        return self._mse_to(fake_pred, self.real_label)

    @run_in_float32
    def discriminator_loss(self, real_pred: Tensor, fake_pred: Tensor) -> Tensor:
        """Loss of the discriminator on real targets and (detached) restorations."""
        return 0.5 * (self._mse_to(real_pred, self.real_label)
                      + self._mse_to(fake_pred, self.fake_label))
