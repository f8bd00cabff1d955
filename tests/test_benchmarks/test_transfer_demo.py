"""benchmarks/transfer_demo.py end to end in --quick mode: data, two pre-training runs, probes,
fine-tuning with tests and the CAM pointing game, the table and results.json."""
import json
import os.path as osp

import numpy as np
import torch

from helpers import load_module


def test_transfer_demo_quick(tmp_path):
    bench = load_module('benchmarks/transfer_demo.py')
    work_dir = str(tmp_path / 'transfer')
    results = bench.main(['--quick', '--work-dir', work_dir, '--seeds', '3'])

    assert list(results['rows']) == ['random', 'MoCo-v2', 'DiRA-MoCo-v2']
    assert results['num_labelled'] == 12  # 50 % of the 24 phantoms + the real radiograph
    data = osp.join(work_dir, 'data')
    assert len(open(osp.join(data, 'test.txt')).read().split('\n')) - 1 == 16
    manifest = json.load(open(osp.join(data, 'demo_manifest.json')))
    assert manifest['args']['nodule_amplitude'] == [0.08, 0.14]
    for name, row in results['rows'].items():
        for key in ('knn_auc', 'linear_auc', 'knn_auc/Nodule', 'linear_auc/Effusion'):
            assert 0 <= row['probe'][key] <= 100, (name, key)
        (trial, ) = row['finetune']
        assert 0 <= trial['auc'] <= 100 and 0 <= trial['pointing_game/Nodule'] <= 100
        if name == 'random':
            assert row['checkpoint'] is None and row['pretrain_s'] is None
            continue
        assert osp.basename(row['checkpoint']) == 'epoch_2.pth'
        ckpt = torch.load(row['checkpoint'], map_location='cpu', weights_only=False)
        assert ckpt['meta']['epoch'] == 2
        assert 'momentum=0.99,' in ckpt['meta']['cfg']  # the short-run override
        has_decoder = any('decoder' in k for k in ckpt['state_dict'])
        assert has_decoder == (name == 'DiRA-MoCo-v2')
    # pre-training changed the features: the probes differ from the random encoder's
    assert results['rows']['MoCo-v2']['probe'] != results['rows']['random']['probe']
    table = results['table']
    assert table.count('\n| ') == 4 and '`python benchmarks/transfer_demo.py --quick' in table
    saved = json.load(open(osp.join(work_dir, 'results.json')))
    assert saved['table'] == table
    assert np.isclose(saved['rows']['DiRA-MoCo-v2']['finetune'][0]['auc'],
                      results['rows']['DiRA-MoCo-v2']['finetune'][0]['auc'])
