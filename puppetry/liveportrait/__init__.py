"""LivePortrait (paper 001): implicit-keypoint portrait animation that runs the official release weights."""
