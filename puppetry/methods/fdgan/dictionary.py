"""FD-GAN's feature dictionary (paper 002, Sec. 3.2, Eq. 8-9): an NTM-style memory written by the extractor
from the source's appearance and read by the translator at the target's layout.

A dictionary has ``n`` rows; row ``i`` has a learned write tag ``t_i`` and read tag ``u_i`` (length ``m_T``)
and a value ``v_i`` (length ``m_V``) computed per image:

- write (Eq. 8): the extractor's feature map gives a write key ``p_j`` and a write value ``x_j`` at every
  location ``j``; ``v_i = sum_j softmax_j(t_i . p_j) x_j``: each row gathers the locations whose key matches
  its tag;
- read (Eq. 9): the translator's feature map gives a read key ``q_j``; ``y_j = sum_k softmax_k(u_k . q_j) v_k``:
  each location takes the rows whose tag matches its key.

The functions are the equations on tensors; :class:`DictionaryWriter` and :class:`DictionaryReader` add the
1x1 convolutions that compute keys and values (supplementary Sec. 6) and hold the tags. A reader adds what
it reads to its input, as a residual block.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def dictionary_write(keys: torch.Tensor, values: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
    """Eq. 8: ``B x m_T x H x W`` write keys, ``B x m_V x H x W`` write values, ``n x m_T`` write tags ->
    the dictionary, ``B x n x m_V``."""
    p = keys.flatten(2)                                          # B x m_T x N
    weights = torch.matmul(tags, p).softmax(dim=-1)              # B x n x N, softmax over locations
    return torch.bmm(weights, values.flatten(2).transpose(1, 2))  # B x n x m_V


def dictionary_read(keys: torch.Tensor, dictionary: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
    """Eq. 9: ``B x m_T x H x W`` read keys, a ``B x n x m_V`` dictionary and ``n x m_T`` read tags -> the
    values read at every location, ``B x m_V x H x W``."""
    b, _, h, w = keys.shape
    q = keys.flatten(2).transpose(1, 2)                          # B x N x m_T
    weights = torch.matmul(q, tags.t()).softmax(dim=-1)          # B x N x n, softmax over rows
    return torch.bmm(weights, dictionary).transpose(1, 2).reshape(b, dictionary.shape[-1], h, w)


class DictionaryWriter(nn.Module):
    """Writes one dictionary from a ``B x C x H x W`` feature map: ``B x rows x value_length``."""

    def __init__(self, in_channels: int, rows: int, tag_length: int, value_length: int):
        super().__init__()
        self.tags = nn.Parameter(torch.randn(rows, tag_length) / math.sqrt(tag_length))
        self.key = nn.Conv2d(in_channels, tag_length, 1)
        self.value = nn.Conv2d(in_channels, value_length, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dictionary_write(self.key(x), self.value(x), self.tags)


class DictionaryReader(nn.Module):
    """Reads a dictionary at every location of a ``B x C x H x W`` feature map and adds it (``C`` must be the
    dictionary's value length)."""

    def __init__(self, in_channels: int, rows: int, tag_length: int):
        super().__init__()
        self.tags = nn.Parameter(torch.randn(rows, tag_length) / math.sqrt(tag_length))
        self.key = nn.Conv2d(in_channels, tag_length, 1)

    def forward(self, x: torch.Tensor, dictionary: torch.Tensor) -> torch.Tensor:
        return x + dictionary_read(self.key(x), dictionary, self.tags)
