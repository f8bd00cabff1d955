"""Train-step time of dira_mm vs a bare PyTorch loop over the same modules.

Both sides run the same DiRA iteration (generator step with MoCo-v2 + restoration +
adversarial loss, then the discriminator step) on the same modules and random uint8
batches; the framework side goes through ``DiRA.train_step`` with mmengine's
``OptimWrapperDict`` (preprocessor, loss parsing, logging dicts), the bare side calls the
modules and optimizers directly. The difference is the framework's overhead.

    python benchmarks/train_step.py --encoder resnet18 --size 128 --batch 8 --steps 10
"""
import argparse
import copy
import sys
import time
import os.path as osp

import torch
import torch.nn.functional as F

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.optim import OptimWrapper, OptimWrapperDict  # noqa: E402

from dira_mm.models import DiRA  # noqa: E402
from dira_mm.structures import DiRADataSample  # noqa: E402


def build(encoder: str, seed: int = 0) -> DiRA:
    torch.manual_seed(seed)
    width = 2048 if encoder == 'resnet50' else 512
    return DiRA(
        discriminative=dict(
            type='MoCo', backbone=dict(type='ResNetUNet', encoder_name=encoder),
            neck=dict(type='MoCoV2Neck', in_channels=width, hid_channels=width, out_channels=128),
            head=dict(type='ContrastiveHead', temperature=0.2), queue_len=4096, feat_dim=128),
        restorative=dict(type='RestorativeHead'),
        adversarial=dict(discriminator=dict(type='PatchDiscriminator')))


def optimizers(model: DiRA):
    g = torch.optim.SGD(model.ssl.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
    d = torch.optim.Adam(model.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    return g, d


def batch(n: int, size: int, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    views = [torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=g)
             for _ in range(2)]
    ds = [DiRADataSample(target=torch.randint(0, 256, (1, size, size), dtype=torch.uint8,
                                              generator=g)) for _ in range(n)]
    return dict(inputs=views, data_samples=ds)


def bare_step(model: DiRA, g_opt, d_opt, data: dict) -> None:
    """The same iteration written directly against the modules."""
    ssl, disc = model.ssl, model.discriminator
    v0, v1 = [v.float().div(255).expand(-1, 3, -1, -1) for v in data['inputs']]
    target = torch.stack([d.target.float().div(255) for d in data['data_samples']])
    feats = ssl.backbone.encoder(v0)
    q = F.normalize(ssl.neck(feats), dim=1)
    k = ssl.encode_keys(v1)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ ssl.queue], 1) / 0.2
    loss_dis = F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long))
    rec = ssl.backbone.segmentation_head(ssl.backbone.decoder(feats))
    for p in disc.parameters():
        p.requires_grad_(False)
    loss_adv = ((disc(rec) - 1) ** 2).mean()
    for p in disc.parameters():
        p.requires_grad_(True)
    g_loss = loss_dis + 10 * F.mse_loss(rec, target) + 0.001 * loss_adv
    g_opt.zero_grad()
    g_loss.backward()
    g_opt.step()
    ssl._dequeue_and_enqueue(k)
    pred = disc(torch.cat([target, rec.detach()]))
    n = len(target)
    d_loss = 0.5 * (((pred[:n] - 1) ** 2).mean() + (pred[n:] ** 2).mean())
    d_opt.zero_grad()
    d_loss.backward()
    d_opt.step()


def time_it(fn, steps: int, warmup: int) -> float:
    for i in range(warmup):
        fn(i)
    t = time.perf_counter()
    for i in range(steps):
        fn(warmup + i)
    return (time.perf_counter() - t) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--encoder', default='resnet18')
    ap.add_argument('--size', type=int, default=128)
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--threads', type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    fw = build(args.encoder)
    bare = copy.deepcopy(fw)
    g, d = optimizers(fw)
    ow = OptimWrapperDict(generator=OptimWrapper(g), discriminator=OptimWrapper(d))
    bg, bd = optimizers(bare)
    fw.train(), bare.train()
    data = [batch(args.batch, args.size, s) for s in range(args.steps + args.warmup)]
    rows = []
    t_fw = time_it(lambda i: fw.train_step(copy.copy(data[i]), ow), args.steps, args.warmup)
    t_bare = time_it(lambda i: bare_step(bare, bg, bd, data[i]), args.steps, args.warmup)
    rows.append(('bare PyTorch loop', t_bare))
    rows.append(('dira_mm DiRA.train_step (OptimWrapperDict)', t_fw))
    print(f'\nDiRA-MoCo-v2 train step, {args.encoder} U-Net, {args.size}x{args.size}, batch '
          f'{args.batch}, {args.threads} CPU threads, {args.steps} steps after {args.warmup} '
          'warm-up\n')
    print('| loop | ms/step | overhead |')
    print('|---|---:|---:|')
    for name, t in rows:
        print(f'| {name} | {t * 1e3:.1f} | {100 * (t / t_bare - 1):+.1f} % |')
    print('\ncommand: python benchmarks/train_step.py ' + ' '.join(sys.argv[1:]))


if __name__ == '__main__':
    main()
