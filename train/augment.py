"""Augmentation of a whole batch on its device: one affine warp per image through affine_grid/grid_sample.

A random horizontal flip, rotation, zoom and shift per image (train.augment: the seeds found +/-10
degrees and +/-10 % best), drawn from a generator seeded by (seed, epoch, step) so a resumed run
draws what the uninterrupted one drew, on any number of loader workers.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from train.params import Augment

PIXEL_MEAN, PIXEL_STD = 0.5, 0.25  # grey faces in [0, 1] to roughly zero mean, unit spread; batch norm does the rest


def step_generator(device: torch.device, seed: int, epoch: int, step: int) -> torch.Generator:
    """A generator for one training step; its stream depends only on (seed, epoch, step)."""
    g = torch.Generator(device=device)
    g.manual_seed((seed * 1_000_003 + epoch) * 1_000_003 + step)
    return g


def to_input(images: torch.Tensor, channels_last: bool = False) -> torch.Tensor:
    """uint8 (B, H, W) on the device -> normalised float (B, 1, H, W)."""
    x = images.unsqueeze(1).float().div_(255.0).sub_(PIXEL_MEAN).div_(PIXEL_STD)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def affine(x: torch.Tensor, aug: Augment, gen: torch.Generator) -> torch.Tensor:
    """x (B, C, H, W) float, each image flipped / rotated / zoomed / shifted at random."""
    b = x.shape[0]
    u = torch.rand((b, 5), generator=gen, device=x.device, dtype=torch.float32) * 2 - 1  # uniform in [-1, 1)
    angle = u[:, 0] * math.radians(aug.rotate_deg)
    scale = 1 + u[:, 1] * aug.zoom  # > 1 zooms in
    flip = torch.where(u[:, 4] < 0, -1.0, 1.0) if aug.flip else torch.ones_like(angle)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # theta maps output to input coordinates in [-1, 1]: a shift of 10 % of the side is 0.2 there.
    theta = torch.stack(
        [
            torch.stack([flip * cos, -sin, u[:, 2] * aug.shift * 2], 1),
            torch.stack([flip * sin, cos, u[:, 3] * aug.shift * 2], 1),
        ],
        1,
    ).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
