"""attrib: tell which generator made an image, or say it is unknown."""

__version__ = "0.1.0"
