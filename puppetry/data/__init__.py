"""Datasets: ``prepare`` videos into sharded one-person face clips, and read them back as streams.

``puppetry prepare VIDEOS -o DATASET`` writes the format of :mod:`puppetry.data.format`;
:func:`open_dataset` / :class:`PreparedDataset` read it clip by clip and :func:`iter_shards` splits it
between the processes of a multi-process reader.
"""

from puppetry.data.dataset import ClipInfo, PreparedDataset, iter_shards, open_dataset
from puppetry.data.prepare import PrepareOptions, PrepareSummary, prepare_dataset

__all__ = ["ClipInfo", "PrepareOptions", "PrepareSummary", "PreparedDataset", "iter_shards", "open_dataset",
           "prepare_dataset"]
