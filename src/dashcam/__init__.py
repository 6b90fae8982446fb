"""dashcam: self-hosted observability for generative-AI applications."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``dashcam.instrument``, ``dashcam.capture``, ``dashcam.uninstrument``: loaded on first use,
    so ``import dashcam`` stays light."""
    if name in ("instrument", "uninstrument", "capture"):
        import dashcam.capture

        return dashcam.capture if name == "capture" else getattr(dashcam.capture, name)
    raise AttributeError(f"module 'dashcam' has no attribute {name!r}")
