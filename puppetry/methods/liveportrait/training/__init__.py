"""Training LivePortrait (paper 001): ``puppetry train liveportrait`` (Stage I base model, Stage II stitching and
retargeting), exporting the release's checkpoint layout. The recipe is :mod:`.recipe`."""
