"""The lab scales a grading's colour and clarity must be on (docs/format.md §4.3, "Grades").

A colour is a letter of the D-to-Z scale or a fancy colour ``<grade> [<modifier>] <hue>``; a clarity is one grade
of FL .. I3. A value off the scale is ``record.grading_scale``, checked when a ``graded`` event is built and when
a record is read (so a forged record is a finding in an audit and in a bundle).
"""

from __future__ import annotations

import re

from . import _schema as s
from ._codec import Value

__all__ = ["CLARITY_GRADES", "COLOUR_LETTERS", "FANCY_GRADES", "HUES", "HUE_MODIFIERS", "MAX_COLOUR",
           "read_clarity", "read_colour"]

#: The D-to-Z colour scale: D (colourless) to Z (light yellow or brown), one capital letter.
COLOUR_LETTERS = frozenset("DEFGHIJKLMNOPQRSTUVWXYZ")
#: Fancy-colour grades, from the faintest to the darkest: a fancy colour is ``<grade> [<modifier>] <hue>``.
FANCY_GRADES = ("Faint", "Very Light", "Light", "Fancy Light", "Fancy", "Fancy Intense", "Fancy Vivid",
                "Fancy Deep", "Fancy Dark")
HUES = frozenset({"Black", "Blue", "Brown", "Gray", "Green", "Orange", "Pink", "Purple", "Red", "Violet", "White",
                  "Yellow"})
#: A secondary hue before the main one (``Fancy Intense Purplish Pink``), mapped to the hue it names; never the
#: main hue itself (``Yellowish Yellow`` is refused).
HUE_MODIFIERS = {"Bluish": "Blue", "Brownish": "Brown", "Grayish": "Gray", "Greenish": "Green", "Orangy": "Orange",
                 "Pinkish": "Pink", "Purplish": "Purple", "Yellowish": "Yellow"}
#: The clarity scale, from flawless to the most included.
CLARITY_GRADES = ("FL", "IF", "VVS1", "VVS2", "VS1", "VS2", "SI1", "SI2", "I1", "I2", "I3")
MAX_COLOUR = 32  # the longest fancy colour, "Fancy Intense Yellowish Orange", is 30 characters
_FANCY = re.compile(f"(?:{'|'.join(FANCY_GRADES)}) (?:({'|'.join(HUE_MODIFIERS)}) )?({'|'.join(sorted(HUES))})")


def read_colour(value: Value, where: str) -> str:
    """A colour grade: a letter D..Z, or a fancy colour ``<grade> [<modifier>] <hue>`` (:data:`FANCY_GRADES`,
    :data:`HUE_MODIFIERS`, :data:`HUES`; words as written there, one space apart). Text of 1..32 characters
    first (``record.text`` / ``record.malformed``), then the scale (``record.grading_scale``)."""
    text = s.read_text(value, where, max_len=MAX_COLOUR)
    if text in COLOUR_LETTERS:
        return text
    fancy = _FANCY.fullmatch(text)
    if fancy is None or (fancy[1] is not None and HUE_MODIFIERS[fancy[1]] == fancy[2]):
        raise s.off_scale(where, text, "D-to-Z scale or a fancy colour (<grade> [<modifier>] <hue>)")
    return text


def read_clarity(value: Value, where: str) -> str:
    """A clarity grade of :data:`CLARITY_GRADES` (FL .. I3): short text first, then the scale."""
    text = s.read_text(value, where, max_len=16)
    if text not in CLARITY_GRADES:
        raise s.off_scale(where, text, f"clarity scale ({', '.join(CLARITY_GRADES)})")
    return text
