"""attrib: tell which generator made an image, or say it is unknown."""

from .hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]
