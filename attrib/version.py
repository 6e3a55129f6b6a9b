"""The version of attrib, in a module of its own at the bottom of the layers: any part may import it
without importing the package API (:mod:`attrib`)."""

__version__ = "0.1.0"
