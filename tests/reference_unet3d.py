"""An independent test-only model of Models Genesis' ``UNet3D`` (the official layout).

Written for the tests from the published structure (reference note
``dira_3d_transvw.md`` section 2.1: per level two conv3x3x3 -> always-batch-statistics BN
-> ReLU units named ``ops.N.conv1`` / ``ops.N.bn1``, ``down_tr64/128/256/512``,
``up_tr256/128/64`` with ``up_conv``, ``out_tr.final_conv`` + sigmoid), without using
dira_mm's ``GenesisUNet3D``, so that a state dict it produces is the layout an official
checkpoint has, and loading dira_mm's exports into it checks them against that layout.
``b`` scales every width (official 32).
"""
import torch
import torch.nn.functional as F
from torch import nn


class RefBN(nn.BatchNorm3d):
    """Batch statistics in train and eval alike (the official ContBatchNorm3d)."""

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight,
                            self.bias, training=True, momentum=self.momentum, eps=self.eps)


class RefLU(nn.Module):

    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv3d(cin, cout, 3, padding=1)
        self.bn1 = RefBN(cout)
        self.activation = nn.ReLU()

    def forward(self, x):
        return self.activation(self.bn1(self.conv1(x)))


class RefDown(nn.Module):

    def __init__(self, cin, c1, c2, pool):
        super().__init__()
        self.ops = nn.Sequential(RefLU(cin, c1), RefLU(c1, c2))
        self.maxpool = nn.MaxPool3d(2)
        self.pool = pool

    def forward(self, x):
        skip = self.ops(x)
        return (self.maxpool(skip) if self.pool else skip), skip


class RefUp(nn.Module):

    def __init__(self, cin, cskip, cout):
        super().__init__()
        self.up_conv = nn.ConvTranspose3d(cin, cin, 2, stride=2)
        self.ops = nn.Sequential(RefLU(cin + cskip, cout), RefLU(cout, cout))

    def forward(self, x, skip):
        return self.ops(torch.cat([self.up_conv(x), skip], dim=1))


class RefOut(nn.Module):

    def __init__(self, cin, n_class):
        super().__init__()
        self.final_conv = nn.Conv3d(cin, n_class, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return self.sigmoid(self.final_conv(x))


class RefUNet3D(nn.Module):
    """Official widths at ``b=32``: 1-32-64 | 64-64-128 | 128-128-256 | 256-256-512,
    up 512+256->256, 256+128->128, 128+64->64, out 64->n_class."""

    def __init__(self, b=32, n_class=1):
        super().__init__()
        self.down_tr64 = RefDown(1, b, 2 * b, True)
        self.down_tr128 = RefDown(2 * b, 2 * b, 4 * b, True)
        self.down_tr256 = RefDown(4 * b, 4 * b, 8 * b, True)
        self.down_tr512 = RefDown(8 * b, 8 * b, 16 * b, False)
        self.up_tr256 = RefUp(16 * b, 8 * b, 8 * b)
        self.up_tr128 = RefUp(8 * b, 4 * b, 4 * b)
        self.up_tr64 = RefUp(4 * b, 2 * b, 2 * b)
        self.out_tr = RefOut(2 * b, n_class)

    def forward(self, x):
        x, s64 = self.down_tr64(x)
        x, s128 = self.down_tr128(x)
        x, s256 = self.down_tr256(x)
        x, _ = self.down_tr512(x)
        x = self.up_tr256(x, s256)
        x = self.up_tr128(x, s128)
        x = self.up_tr64(x, s64)
        return self.out_tr(x)
