"""The web app (``puppetry serve``): animate, preview with sliders and puppeteer live from a browser."""

from puppetry.app.sessions import AppConfig, LiveSession, PreviewCache, RenderSettings

__all__ = ["AppConfig", "LiveSession", "PreviewCache", "RenderSettings"]
