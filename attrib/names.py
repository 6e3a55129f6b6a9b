"""The one rule for the names of generators and families, shared by the library, the CLI and HTTP.

A name is 1 to :data:`MAX_LENGTH` characters of letters and digits (of any script) and the
punctuation in :data:`PUNCTUATION` (``. _ - @ :`` and the space), starting and ending with a letter or
a digit. So a name never holds a path separator (``/`` or ``\\``), a control character, markup
(``<``, ``>``, ``&``, quotes), a ``+`` (which joins fused extractor names) or a leading or trailing
space, and it reads the same in a terminal, a file name, a URL path and an HTML page.

Names are checked where a generator is created or renamed (``Gallery.enroll``,
``Gallery.enroll_embedded``, ``Gallery.rename``); names already stored are looked up as they are, so a
gallery holding a name enrolled before this rule keeps working, and ``attrib gallery rename OLD NEW``
gives it a name that follows the rule.
"""

from __future__ import annotations

from .errors import AttribError

MAX_LENGTH = 100
PUNCTUATION = "._-@: "
RULE = (f"1-{MAX_LENGTH} letters, digits and . _ - @ : or spaces, starting and ending with a letter or a digit "
        "(no /, \\, +, control characters or markup)")


class BadName(AttribError):
    """A generator or family name does not follow the naming rule (:data:`RULE`)."""


def name_problem(name: object) -> str | None:
    """Why ``name`` breaks the rule (a short phrase), or None when it follows it."""
    if not isinstance(name, str):
        return f"it is a {type(name).__name__}, not text"
    if not name:
        return "it is empty"
    if len(name) > MAX_LENGTH:
        return f"it is {len(name)} characters long"
    for ch in name:
        if not (ch.isalnum() or ch in PUNCTUATION):
            return f"it holds {_shown(ch)}"
    if not name[0].isalnum():
        return f"it starts with {_shown(name[0])}"
    if not name[-1].isalnum():
        return f"it ends with {_shown(name[-1])}"
    return None


def check_name(name: object, what: str = "generator") -> str:
    """``name`` unchanged when it follows the rule; else :class:`BadName` naming it and the rule."""
    problem = name_problem(name)
    if problem is not None:
        raise BadName(f"{what} name {name!r} is not allowed ({problem}): use {RULE}")
    assert isinstance(name, str)
    return name


def _shown(ch: str) -> str:
    if ch == " ":
        return "a space"
    if ch.isprintable():
        return repr(ch)
    return f"the unprintable character U+{ord(ch):04X}"
