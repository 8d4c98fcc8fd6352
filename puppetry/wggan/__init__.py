"""wg-GAN + hrh-GAN (paper 003): the landmark warp refined by a displacement-conditioned GAN, with the
inner mouth hallucinated by a global-and-local completion GAN. See the README section of the same name."""
