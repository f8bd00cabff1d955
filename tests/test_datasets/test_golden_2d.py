"""The 2-D pipeline's outputs are pinned (issue 9, section 1): today's transforms and a seeded
two-iteration DiRA demo training step, recorded by ``tests/data/golden/make_golden.py`` into
``tests/data/golden/golden_2d.npz``, must come out the same after the n-dimensional refactor.

Transform outputs (pixels, boxes, flips, metainfo) are compared exactly; the training step's
losses and parameter checksums with ``rtol=1e-5`` (CPU kernels may differ slightly).
"""
import json
import os.path as osp

import numpy as np
import pytest

from helpers import REPO, load_module

GOLDEN_DIR = osp.join(REPO, 'tests', 'data', 'golden')
MAKE = load_module(osp.join(GOLDEN_DIR, 'make_golden.py'), 'dira_golden_make_golden_2d')
RTOL = 1e-5
REGEN = (f'Regenerate the golden data ONLY if this change of the 2-D outputs is intended: '
         f'`{MAKE.REGEN_CMD}` (and say so in the commit message).')


def _golden():
    with np.load(MAKE.GOLDEN, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


GOLDEN = _golden()
MANIFEST = json.loads(str(GOLDEN['transforms_manifest']))
CASES = sorted({key.split('|seed=')[0] for key in MANIFEST})


@pytest.fixture(scope='module')
def outputs():
    return MAKE.run_transforms()


def _describe(case: str, key: str, want: np.ndarray, got: np.ndarray) -> str:
    if want.shape != got.shape or want.dtype != got.dtype:
        return f'{want.dtype}{list(want.shape)} -> {got.dtype}{list(got.shape)}'
    diff = want.astype(np.float64) != got.astype(np.float64)
    where = np.argwhere(diff)[:3].tolist()
    return (f'{int(diff.sum())} of {diff.size} values differ (first at {where}; '
            f'max abs diff {np.abs(want.astype(np.float64) - got).max():g})')


def _compare(run: str, want: dict, got: dict) -> list:
    problems = []
    for key in sorted(set(want) | set(got)):
        if key not in got:
            problems.append(f'{run}: output {key!r} is gone')
            continue
        if key not in want:
            problems.append(f'{run}: new output {key!r}')
            continue
        spec, value = want[key], got[key]
        if 'sha256' in spec:
            if not isinstance(value, np.ndarray):
                problems.append(f'{run}: {key!r} was an array, is now {value!r}')
            elif MAKE._digest(value) != spec['sha256']:
                raw = GOLDEN.get(f'raw::{run}::{key}')
                if raw is not None:
                    detail = _describe(run, key, raw, value)
                else:
                    detail = (f"stored {spec['dtype']}{spec['shape']}, now "
                              f'{value.dtype.str}{list(value.shape)}; content differs')
                problems.append(f'{run}: array {key!r} changed: {detail}')
        else:
            if isinstance(value, np.ndarray):
                problems.append(f"{run}: {key!r} was {spec['value']!r}, is now an array")
            elif value != spec['value']:
                problems.append(f"{run}: {key!r} was {spec['value']!r}, is now {value!r}")
    return problems


def test_golden_data_is_small_and_complete():
    assert osp.getsize(MAKE.GOLDEN) < 1024 * 1024
    assert set(CASES) == set(MAKE.transform_cases()), (
        'the cases of make_golden.py differ from the stored ones. ' + REGEN)
    modes = {spec['value'] for run, flat in MANIFEST.items() if run.startswith('pipeline/dira')
             for key, spec in flat.items() if 'meta.distortion/' in key and 'value' in spec}
    assert {'inpaint', 'swap', 'none'} <= modes  # the seeds reach the distortion branches


@pytest.mark.parametrize('case', CASES)
def test_transform_outputs_match_golden(outputs, case):
    problems = []
    for run in sorted(r for r in MANIFEST if r.split('|seed=')[0] == case):
        if run not in outputs:
            problems.append(f'{run}: not produced any more')
            continue
        problems += _compare(run, MANIFEST[run], outputs[run])
    assert not problems, (
        f'transform {case!r}: the 2-D outputs differ from tests/data/golden/golden_2d.npz '
        f'({len(problems)} differences):\n  ' + '\n  '.join(problems[:20]) + '\n' + REGEN)


def test_train_step_matches_golden():
    got = MAKE.run_train_step()
    want = {k[len('train::'):]: v for k, v in GOLDEN.items() if k.startswith('train::')}
    problems = [f'{key!r} is gone' for key in sorted(set(want) - set(got))]
    problems += [f'new record {key!r}' for key in sorted(set(got) - set(want))]
    for key in sorted(set(want) & set(got)):
        w, g = want[key], got[key]
        if w.shape != g.shape:
            problems.append(f'{key}: shape {w.shape} -> {g.shape}')
            continue
        if key.startswith('param/'):
            # [sum, abs-sum]: the sum of signed values is compared at the abs-sum's scale
            atol = RTOL * abs(w[1])
            ok = np.isclose(w[1], g[1], rtol=RTOL, atol=0) and abs(w[0] - g[0]) <= atol
        else:
            ok = np.allclose(w, g, rtol=RTOL, atol=0, equal_nan=True)
        if not ok:
            problems.append(f'{key}: stored {w.tolist()}, now {g.tolist()}')
    assert not problems, (
        f'the seeded 2-iteration DiRA demo training step differs from '
        f'tests/data/golden/golden_2d.npz beyond rtol={RTOL} ({len(problems)} differences):\n  '
        + '\n  '.join(problems[:20]) + '\n' + REGEN)
