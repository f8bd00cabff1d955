"""load_checked: the one checked way to load weights (report values, refusals, prefixes)."""
import re

import pytest
import torch
import torchvision
from torch import nn

from dira_mm.models.utils import load_checked, unet_weights_from_checkpoint
from dira_mm.utils.convert import WeightConversionError


def tiny(out: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Linear(2, out), nn.BatchNorm1d(out))


def weights(out: int = 3, value: float = 7.0) -> dict:
    """A state dict of ``tiny(out)`` whose every entry is ``value`` (unlike any init)."""
    return {k: torch.full_like(v, value) for k, v in tiny(out).state_dict().items()}


KEYS = ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var',
        '1.num_batches_tracked']


def test_matching_weights_load_and_the_report_lists_every_key():
    model = tiny()
    report = load_checked(model, weights(), what='hand-made')
    assert report['ok'] and report['matched'] == KEYS
    assert report['missing'] == report['unexpected'] == report['shape_mismatch'] == []
    assert report['stripped_prefix'] == '' and report['what'] == 'hand-made'
    assert all((v == 7).all() for v in model.state_dict().values())
    assert 'hand-made: 7 tensors.' in report['text'] and 'matched:        7' in report['text']
    assert 'RESULT: OK' in report['text']


def _refused(state, **kw):
    model = tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(WeightConversionError) as err:
        load_checked(model, state, what='ckpt.pth', **kw)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # untouched
    return str(err.value), err.value.report


def test_missing_unexpected_and_shape_mismatch_are_refused_naming_the_keys():
    state = weights()
    del state['1.running_var']
    text, report = _refused(state)
    assert report['missing'] == ['1.running_var'] and len(report['matched']) == 6
    assert text.startswith('ckpt.pth does not fit Sequential: 1 missing (1.running_var).')
    extra = {'extra.w': torch.zeros(1), 'extra.b': torch.zeros(1)}
    text, report = _refused(dict(weights(), **extra))
    assert report['unexpected'] == ['extra.w', 'extra.b'] and report['matched'] == KEYS
    assert '2 unexpected (extra.w, extra.b)' in text and 'RESULT: ERROR' in text
    text, report = _refused(weights(out=4))  # Linear(2, 4): every tensor has another shape
    assert report['shape_mismatch'][0] == ('0.weight', (4, 2), (3, 2))
    assert report['matched'] == ['1.num_batches_tracked']
    # the summary quotes the first three and counts the rest
    assert '6 with another shape (0.weight: got (4, 2), expected (3, 2), 0.bias: got (4,), ' \
        'expected (3,), 1.weight: got (4,), expected (3,), ... (+3 more))' in text


def test_allowed_patterns_let_keys_be_missing_or_extra():
    model = tiny()
    state = {k: v for k, v in weights().items() if not k.startswith('1.')}
    state['old_head.weight'] = torch.zeros(5)
    bn_before = model[1].running_var.clone()
    report = load_checked(model, state, allowed_missing=[r'1\..*'],
                          allowed_unexpected=[r'old_head\..*'])
    assert report['ok'] and report['matched'] == ['0.weight', '0.bias']
    assert report['allowed_missing'] == KEYS[2:]
    assert report['allowed_unexpected'] == ['old_head.weight']
    assert (model[0].weight == 7).all() and torch.equal(model[1].running_var, bn_before)
    assert 'not loaded (allowed, not in the target): old_head.weight' in report['text']
    # patterns match whole keys only: '1' does not allow '1.weight'
    with pytest.raises(WeightConversionError, match=r'5 missing \(1\.weight'):
        load_checked(tiny(), {k: v for k, v in weights().items() if k.startswith('0.')},
                     allowed_missing=['1'])


def test_ddp_prefix_and_checkpoint_dicts_are_understood():
    model = tiny()
    state = {'module.' + k: v for k, v in weights(value=3.0).items()}
    report = load_checked(model, {'state_dict': state, 'meta': {}})
    assert report['ok'] and report['stripped_prefix'] == 'module.'
    assert report['matched'] == KEYS and (model[0].bias == 3).all()
    assert 'DDP prefix "module." stripped' in report['text']


def test_a_torchvision_resnet_file_loads_into_the_unet_encoder():
    from dira_mm.models.backbones import ResNetUNet

    torch.manual_seed(0)
    tv = torchvision.models.resnet18()
    unet, source, prefix = unet_weights_from_checkpoint(
        {'module.' + k: v for k, v in tv.state_dict().items()})
    assert source == 'torchvision ResNet state dict' and prefix == ''
    encoder = ResNetUNet(encoder_name='resnet18', with_decoder=False)
    report = load_checked(encoder, unet, allowed_unexpected=[r'encoder\.fc\..*'])
    assert report['allowed_unexpected'] == ['encoder.fc.weight', 'encoder.fc.bias']
    assert len(report['matched']) == len(tv.state_dict()) - 2
    assert torch.equal(encoder.encoder.layer4[1].conv2.weight, tv.layer4[1].conv2.weight)
    # without the allowance the old ImageNet head is an error naming it
    with pytest.raises(WeightConversionError, match=re.escape('2 unexpected (encoder.fc.weight')):
        load_checked(ResNetUNet(encoder_name='resnet18', with_decoder=False), unet)
