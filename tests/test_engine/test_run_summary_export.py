"""RunSummaryHook's next-step exporter command matches the backbone (2-D or 3-D)."""
from torch import nn

from dira_mm.engine.hooks.run_summary_hook import RunSummaryHook
from dira_mm.registry import MODELS


def test_export_command_per_backbone():
    cmd = RunSummaryHook.export_command
    cases = [
        (dict(type='ResNetUNet', encoder_name='resnet18'),
         'extract_unet.py c.pth w/unet.pth --format smp'),
        (dict(type='ResNetUNet', encoder_name='resnet18', with_decoder=False),
         'extract_unet.py c.pth w/encoder.pth --format torchvision'),
        (dict(type='ResNetUNet3D', backbone='resnet10'),
         'export_3d.py c.pth w/unet3d.pth --format flexible_unet'),
        (dict(type='ResNetUNet3D', backbone='resnet10', with_decoder=False),
         'export_3d.py c.pth w/encoder3d.pth --format monai_resnet'),
        (dict(type='GenesisUNet3D', base_channels=4),
         'export_3d.py c.pth w/genesis_unet3d.pt --format genesis'),
    ]
    for cfg, expected in cases:
        assert cmd(MODELS.build(cfg), 'c.pth', 'w') == \
            'python tools/model_converters/' + expected, cfg
    assert cmd(nn.Linear(1, 1), 'c.pth', 'w') is None
