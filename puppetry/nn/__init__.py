"""Shared network blocks (timm's ``layers`` idea): convolution blocks, SPADE, ConvNeXt-V2."""
