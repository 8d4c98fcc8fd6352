"""Media input and output: images, videos, frame folders and GIFs as ``H x W x 3 uint8 RGB`` arrays."""

from puppetry.media.image import IMAGE_EXTENSIONS, MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, read_image, write_image
from puppetry.media.video import (
    VIDEO_EXTENSIONS,
    VideoInfo,
    VideoReader,
    is_frame_folder,
    is_image_path,
    is_video_path,
    probe_video,
    read_video,
)
from puppetry.media.writer import VideoWriter, even_size

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_IMAGE_PIXELS",
    "MAX_IMAGE_SIDE",
    "VIDEO_EXTENSIONS",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "even_size",
    "is_frame_folder",
    "is_image_path",
    "is_video_path",
    "probe_video",
    "read_image",
    "read_video",
    "write_image",
]
