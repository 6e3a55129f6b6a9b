"""Exceptions raised by the attrib library.

The CLI turns every :class:`AttribError` into one line on stderr; anything
else is a bug and keeps its traceback.
"""


class AttribError(Exception):
    """Base class: an expected failure with a message meant for the user."""


class ImageError(AttribError):
    """An input file cannot be used as an image."""


class ExtractorError(AttribError):
    """An extractor plugin misbehaved or could not be set up."""


class UnknownExtractor(AttribError):
    """No installed plugin provides the requested extractor."""


class GalleryError(AttribError):
    """The gallery on disk is missing, damaged or inconsistent."""


class EmptyGallery(GalleryError):
    """An operation needs enrolled generators and there are none."""


class UnknownGenerator(GalleryError):
    """A generator name is not enrolled in the gallery."""


class EnrollmentConflict(GalleryError):
    """A file is already enrolled under a different generator."""


class ExtractorMismatch(GalleryError):
    """The gallery holds vectors from another version of an extractor."""


class BadOption(ExtractorError):
    """An extractor option has a value the extractor cannot use (raised by every in-repo plugin)."""


class GalleryBusy(GalleryError):
    """Another process holds the gallery's write lock."""


class EvidenceError(AttribError):
    """A file's provenance evidence (C2PA, generation parameters, EXIF, XMP, ...) cannot be read,
    or a trust list given for it cannot be used."""


class MetadataError(EvidenceError):
    """A file's metadata cannot be parsed at all (not an image Pillow can open, or damaged)."""


class DiskFull(GalleryError):
    """The disk holding the gallery ran out of space during a write."""


class ReadOnlyGallery(GalleryError):
    """The gallery folder or its database cannot be written."""


class DamagedGallery(GalleryError):
    """The gallery's database is damaged, truncated, or missing beside files of an existing gallery."""


class StaleGallery(GalleryError):
    """The stored calibration or whitening predates the samples and cannot be refitted here."""
