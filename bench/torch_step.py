#!/usr/bin/env python3
"""The bench's PyTorch CPU reference (pnpm bench runs it as a child process when torch is installed).

    /usr/bin/python3 bench/torch_step.py train --size 64 --iters 3 --warmup 1
    /usr/bin/python3 bench/torch_step.py forward --size 128 --runs 5 --warmup 1 \
        [--weights G.pth --input x.f32 --output y.f32]

train: the official CycleGAN iteration (models/cycle_gan_model.py optimize_parameters): resnet_9blocks ngf 64,
basic PatchGAN D (n_layers 3, ndf 64), instance norm, lsgan, lambda_A = lambda_B = 10, lambda_identity 0.5,
Adam(lr 2e-4, betas (0.5, 0.999)), image pools of 50, batch 1; init_weights('normal', 0.02), seeded.
forward: the resnet_9blocks ngf 64 generator in eval mode under torch.no_grad(); with --weights the bench's own
weights (a .pth it wrote) and input, and the output is written back so the bench can compare it with ours.

Prints one JSON line: per-run seconds (wall clock, time.perf_counter; torch's CPU ops are synchronous) and the
number of intra-op threads. The network classes are the official ones copied into test/fixtures.
"""
import argparse
import itertools
import json
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures'))
from make_generator_parity import ResnetGenerator, get_norm_layer, init_weights  # noqa: E402
from make_step_parity import NLayerDiscriminator, gan_loss  # noqa: E402


class ImagePool:
    """util/image_pool.py (official): the first pool_size queries return their input."""

    def __init__(self, pool_size):
        self.pool_size = pool_size
        self.num_imgs = 0
        self.images = []

    def query(self, images):
        if self.pool_size == 0:
            return images
        return_images = []
        for image in images:
            image = torch.unsqueeze(image.data, 0)
            if self.num_imgs < self.pool_size:
                self.num_imgs += 1
                self.images.append(image)
                return_images.append(image)
            elif random.uniform(0, 1) > 0.5:
                random_id = random.randint(0, self.pool_size - 1)
                tmp = self.images[random_id].clone()
                self.images[random_id] = image
                return_images.append(tmp)
            else:
                return_images.append(image)
        return torch.cat(return_images, 0)


def generator():
    return ResnetGenerator(3, 3, ngf=64, norm_layer=get_norm_layer('instance'), use_dropout=False, n_blocks=9)


def set_requires_grad(nets, flag):
    for net in nets:
        for p in net.parameters():
            p.requires_grad = flag


def train(args):
    torch.manual_seed(0)
    random.seed(0)
    norm = get_norm_layer('instance')
    G_A, G_B = generator(), generator()
    D_A = NLayerDiscriminator(3, ndf=64, n_layers=3, norm_layer=norm)
    D_B = NLayerDiscriminator(3, ndf=64, n_layers=3, norm_layer=norm)
    for net in (G_A, G_B, D_A, D_B):
        init_weights(net, 'normal', 0.02)
        net.train()
    opt_G = torch.optim.Adam(itertools.chain(G_A.parameters(), G_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(itertools.chain(D_A.parameters(), D_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
    pool_A, pool_B = ImagePool(50), ImagePool(50)
    l1 = nn.L1Loss()
    lam_A = lam_B = 10.0
    lam_idt = 0.5
    shape = (1, 3, args.size, args.size)
    real_A = torch.rand(shape) * 2 - 1
    real_B = torch.rand(shape) * 2 - 1

    def step():
        # forward()
        fake_B = G_A(real_A)
        rec_A = G_B(fake_B)
        fake_A = G_B(real_B)
        rec_B = G_A(fake_A)
        # G_A and G_B
        set_requires_grad([D_A, D_B], False)
        opt_G.zero_grad()
        loss_idt_A = l1(G_A(real_B), real_B) * lam_B * lam_idt
        loss_idt_B = l1(G_B(real_A), real_A) * lam_A * lam_idt
        loss_G_A = gan_loss(D_A(fake_B), True)
        loss_G_B = gan_loss(D_B(fake_A), True)
        loss_cycle_A = l1(rec_A, real_A) * lam_A
        loss_cycle_B = l1(rec_B, real_B) * lam_B
        (loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B).backward()
        opt_G.step()
        # D_A and D_B
        set_requires_grad([D_A, D_B], True)
        opt_D.zero_grad()
        fb = pool_B.query(fake_B)
        loss_D_A = (gan_loss(D_A(real_B), True) + gan_loss(D_A(fb.detach()), False)) * 0.5
        loss_D_A.backward()
        fa = pool_A.query(fake_A)
        loss_D_B = (gan_loss(D_B(real_A), True) + gan_loss(D_B(fa.detach()), False)) * 0.5
        loss_D_B.backward()
        opt_D.step()
        return float(loss_D_A + loss_D_B + loss_G_A + loss_G_B)

    warmup, seconds = [], []
    loss = 0.0
    for i in range(args.warmup + args.iters):
        t0 = time.perf_counter()
        loss = step()
        dt = time.perf_counter() - t0
        (warmup if i < args.warmup else seconds).append(dt)
    return {'mode': 'train', 'size': args.size, 'warmup_s': warmup, 'seconds': seconds, 'last_loss_sum': loss}


def forward(args):
    torch.manual_seed(0)
    net = generator()
    if args.weights:
        net.load_state_dict(torch.load(args.weights, map_location='cpu'))
    else:
        init_weights(net, 'normal', 0.02)
    net.eval()
    shape = (1, 3, args.size, args.size)
    if args.input:
        x = torch.from_numpy(np.fromfile(args.input, dtype='<f4').reshape(shape))
    else:
        x = torch.rand(shape) * 2 - 1
    warmup, seconds = [], []
    y = None
    with torch.no_grad():
        for i in range(args.warmup + args.runs):
            t0 = time.perf_counter()
            y = net(x)
            dt = time.perf_counter() - t0
            (warmup if i < args.warmup else seconds).append(dt)
    if args.output:
        y.numpy().astype('<f4').tofile(args.output)
    return {'mode': 'forward', 'size': args.size, 'warmup_s': warmup, 'seconds': seconds}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('mode', choices=['train', 'forward'])
    p.add_argument('--size', type=int, default=64)
    p.add_argument('--iters', type=int, default=3, help='timed training iterations')
    p.add_argument('--runs', type=int, default=5, help='timed forward runs')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--weights', help='generator state dict (.pth) to load instead of a seeded init')
    p.add_argument('--input', help='input [1, 3, size, size] as raw little-endian float32')
    p.add_argument('--output', help='where to write the output as raw little-endian float32')
    p.add_argument('--threads', type=int,
                   help="intra-op threads (default: torch's own choice, reported; on a shared machine more threads"
                        ' than idle cores makes OpenMP spin: 2 threads under load ran 64² steps 8× slower than 1)')
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = train(args) if args.mode == 'train' else forward(args)
    result.update({'torch': torch.__version__, 'threads': torch.get_num_threads()})
    print(json.dumps(result))


if __name__ == '__main__':
    main()
