"""A trade policy as a value: which rules a verifier chose (:class:`Policy`), its file format, and the carat and
country texts of its flags (docs/format.md §9.2). The checks themselves are :mod:`ledger.policy`'s.

Pure: text in, values out.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import InputError

__all__ = ["CARAT_KEYS", "CODES", "Policy", "PolicyError", "format_carats", "parse_carats", "parse_countries"]

#: Every code :func:`check_policy` can report.
CODES = (
    "policy.denied_origin", "policy.unknown_origin", "policy.unverified", "policy.kp_prefix", "policy.kp_dates",
    "policy.kp_reused", "policy.kp_over_total", "policy.kp_mismatch", "policy.regrade_mismatch",
    "policy.import_underdeclared", "policy.declared_below_recorded",
)
MAX_MASS_MCT = 10**9  # as ledger.events: one million carats
MAX_POLICY_FILE = 64 * 1024
_COUNTRY = re.compile(r"[A-Z]{2}")
_CARATS = re.compile(r"(0|[1-9][0-9]{0,6})(?:\.([0-9]{1,3}))?")
_INTEGER = re.compile(r"0|[1-9][0-9]{0,9}")
_LINE = re.compile(r"([A-Za-z0-9_.-]+) *= *(\S(?:.*\S)?)")
_COMMENT = re.compile(r"(?:^|(?<=[ \t]))#.*")
#: The policy-file keys in carats, as the command-line flags name them (``--import-threshold-ct``), and the field
#: each sets; the field's own name (``import_threshold_mct``) takes integer millicarats.
CARAT_KEYS = {"import_threshold_ct": "import_threshold_mct", "regrade_tolerance_ct": "regrade_tolerance_mct",
              "import_tolerance_ct": "import_weight_tolerance_mct"}


class PolicyError(InputError):
    """A policy file, policy value or carat text is malformed."""

    default_code = "policy.malformed"


def parse_carats(text: str) -> int:
    """Decimal carats as integer millicarats, with integer arithmetic only: ``"0.5"`` -> 500, ``"1.512"`` -> 1512.

    Strict: ASCII digits, at most 3 decimals, no sign, exponent, separator, space or leading zero (``"0.5"``
    yes; ``".5"``, ``"5."``, ``"00.5"``, ``"1e3"``, ``"0.5000"``, ``"-1"``, ``"1_0"``, ``" 1"`` no); at most
    1,000,000 ct. Raises PolicyError.
    """
    match = _CARATS.fullmatch(text)
    if match is None:
        raise PolicyError(f"{text!r} is not a mass in carats (digits with at most 3 decimals, e.g. 0.5 or 1.512)")
    whole, fraction = match.group(1), match.group(2) or ""
    mct = int(whole) * 1000 + int(fraction.ljust(3, "0"))
    if mct > MAX_MASS_MCT:
        raise PolicyError(f"{text} ct is over the limit of {MAX_MASS_MCT // 1000} ct")
    return mct


def format_carats(mct: int) -> str:
    """Millicarats as carats with three decimals: 500 -> ``0.500 ct`` (integer arithmetic)."""
    return f"{mct // 1000}.{mct % 1000:03d} ct"


def parse_countries(text: str) -> frozenset[str]:
    """A comma-separated list of ISO 3166-1 alpha-2 codes (``"RU"``, ``"RU,BY"``, ``"RU, BY"``). Raises PolicyError
    for an empty entry, a repeat or a code that is not two upper-case ASCII letters."""
    codes = [part.strip(" ") for part in text.split(",")]
    for code in codes:
        if not _COUNTRY.fullmatch(code):
            raise PolicyError(f"{code!r} is not an ISO 3166-1 alpha-2 country code (two capitals, e.g. RU)")
    if len(set(codes)) != len(codes):
        raise PolicyError(f"{text!r} names a country twice")
    return frozenset(codes)


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """The trade rules to check; the default checks nothing.

    ``deny_origin``: ISO codes no goods may come from or pass through (R1/R2): an item is refused when its origin
    composition (tainted through merges) names one, or when one of its or its ancestors' records is placed in
    one (for a stone, also a record of an article while the stone was set in it). ``import_threshold_mct``: with
    it, ``deny_origin`` applies only to natural or mixed goods imported at or above it (R1: 0.5 ct = 500 mct),
    the goods counting at the larger of their declared mass and the mass the ledger records for them (last
    grading, else recorded mass: a declaration never lowers it), a natural stone set in an imported article at
    the larger of the article's and its own; a declaration below the threshold of goods recorded at or above it
    is a finding of its own (fraud 6, threshold gaming); without it, ``deny_origin`` applies to every item.
    ``kp_rules``: Kimberley Process certificates (R7). ``require_known_origin``: nothing of unknown origin
    (``XX``) is imported (R4). ``require_verified``: every line of descent of a graded natural stone, back to each
    of its roots, passes through a ``verified`` record (R3). ``regrade_tolerance_mct``: gradings of one stone
    (same item, report number or inscription, compared folded: ledger._text.fold) differ by at most this (R11).
    ``import_weight_tolerance_mct``: a mass declared at import is at most this below the stone's last graded
    (else recorded) mass (fraud 6, threshold gaming). Masses in millicarats.
    """

    deny_origin: frozenset[str] = frozenset()
    import_threshold_mct: int | None = None
    kp_rules: bool = False
    require_known_origin: bool = False
    require_verified: bool = False
    regrade_tolerance_mct: int | None = None
    import_weight_tolerance_mct: int | None = None

    def __post_init__(self) -> None:
        deny = self.deny_origin
        if isinstance(deny, str | bytes) or not isinstance(deny, Iterable):
            raise PolicyError("deny_origin must be a set of country codes")
        codes = frozenset(deny)
        for code in codes:
            if not isinstance(code, str) or not _COUNTRY.fullmatch(code):
                upper = f" (codes are capitals: {code.upper()!r})" if isinstance(code, str) and \
                    _COUNTRY.fullmatch(code.upper()) else " (two capitals, e.g. 'RU')"  # the CLI reads ru as RU
                raise PolicyError(f"deny_origin: {code!r} is not an ISO 3166-1 alpha-2 country code{upper}")
        object.__setattr__(self, "deny_origin", codes)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "bool" and not isinstance(value, bool):
                raise PolicyError(f"{f.name} must be true or false")
            if f.type == "int | None" and value is not None and (
                    isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MASS_MCT):
                raise PolicyError(f"{f.name} must be an integer number of millicarats, 0 .. {MAX_MASS_MCT}")

    @property
    def active(self) -> bool:
        """True when at least one rule is switched on (``import_threshold_mct`` alone checks nothing)."""
        return bool(self.deny_origin or self.kp_rules or self.require_known_origin or self.require_verified
                    or self.regrade_tolerance_mct is not None or self.import_weight_tolerance_mct is not None)

    def describe(self) -> list[str]:
        """One plain line per active rule (empty when none is)."""
        lines = []
        if self.deny_origin:
            scope = ("every item" if self.import_threshold_mct is None else
                     f"natural goods imported at {format_carats(self.import_threshold_mct)} or more, alone or "
                     "set in an article, by the larger of the declared and the recorded mass")
            lines.append(f"no origin in or route through {', '.join(sorted(self.deny_origin))} ({scope})")
        if self.kp_rules:
            lines.append("Kimberley Process certificates: prefix, dates, single use, total mass, match")
        if self.require_known_origin:
            lines.append("no import of goods of unknown origin")
        if self.require_verified:
            lines.append("every line of descent of a graded natural stone passes through a verified record")
        if self.regrade_tolerance_mct is not None:
            lines.append(f"gradings of one stone agree within {format_carats(self.regrade_tolerance_mct)}")
        if self.import_weight_tolerance_mct is not None:
            lines.append(f"import declarations at most {format_carats(self.import_weight_tolerance_mct)} below "
                         "the last graded mass")
        return lines

    def extend(self, *, deny_origin: Iterable[str] = (), import_threshold_mct: int | None = None,
               kp_rules: bool = False, require_known_origin: bool = False, require_verified: bool = False,
               regrade_tolerance_mct: int | None = None, import_weight_tolerance_mct: int | None = None) -> Policy:
        """This policy with more rules: countries are added, a True switches a rule on, a number replaces."""
        def pick(new: int | None, old: int | None) -> int | None:
            return old if new is None else new

        return Policy(
            deny_origin=self.deny_origin | frozenset(deny_origin),
            import_threshold_mct=pick(import_threshold_mct, self.import_threshold_mct),
            kp_rules=self.kp_rules or kp_rules,
            require_known_origin=self.require_known_origin or require_known_origin,
            require_verified=self.require_verified or require_verified,
            regrade_tolerance_mct=pick(regrade_tolerance_mct, self.regrade_tolerance_mct),
            import_weight_tolerance_mct=pick(import_weight_tolerance_mct, self.import_weight_tolerance_mct))

    @classmethod
    def parse(cls, text: str) -> Policy:
        """Read a policy file (docs/format.md "Policies"): ``key = value`` lines, blank lines and ``#`` comments
        (a line's rest from a ``#`` that opens it or follows a space or tab). Keys are the command-line flags'
        names with ``_`` for ``-`` (``deny_origin``, ``kp_rules``, ...), masses in carats as the flags take them
        (``import_threshold_ct = 0.5``: :data:`CARAT_KEYS`, :func:`parse_carats`); or the field names, masses in
        integer millicarats (``import_threshold_mct = 500``). Each rule at most once, in either form; other values
        are comma-separated country codes (``deny_origin``) or ``true`` / ``false``. Raises PolicyError naming the
        line, and a known key close to an unknown one."""
        if len(text) > MAX_POLICY_FILE:
            raise PolicyError(f"policy file over {MAX_POLICY_FILE} characters")
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        values: dict[str, object] = {}
        for number, line in enumerate(text.split("\n"), start=1):
            stripped = _COMMENT.sub("", line).strip(" \t\r")  # "deny_origin = RU  # Russia": no value has "#"
            if not stripped:
                continue
            match = _LINE.fullmatch(stripped)
            if match is None:
                raise PolicyError(f"line {number}: expected 'key = value'")
            key, raw = match.groups()
            field = CARAT_KEYS.get(key, key)
            if field not in types:
                near = key.lower().replace("-", "_")  # a flag's name, as typed on the command line
                close = near if CARAT_KEYS.get(near, near) in types else \
                    next(iter(difflib.get_close_matches(near, _known_keys(types), n=1)), None)  # deny_origins
                hint = f"did you mean {close}? " if close else ""
                raise PolicyError(f"line {number}: unknown key {key!r} ({hint}known: {', '.join(_known_keys(types))})")
            if field in values:
                again = "" if field == key else f" (as {field})"
                raise PolicyError(f"line {number}: {key} is set twice{again}")
            try:
                values[field] = parse_carats(raw) if key in CARAT_KEYS else _read_value(types[key], raw)
            except PolicyError as exc:
                raise PolicyError(f"line {number}: {key}: {exc}") from exc
        return cls(**values)  # type: ignore[arg-type]

    def format(self) -> str:
        """Policy file text that :meth:`parse` reads back to this policy (only the fields that are set), keys and
        units as the command-line flags have them (masses in carats)."""
        lines = ["# StoneTrail policy file (docs/format.md, Policies); masses in carats, as the flags take them."]
        by_field = {field: key for key, field in CARAT_KEYS.items()}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or value is False or value == frozenset():
                continue
            text = (",".join(sorted(value)) if isinstance(value, frozenset) else
                    str(value).lower() if isinstance(value, bool) else _carat_text(value))
            lines.append(f"{by_field.get(f.name, f.name)} = {text}")
        return "\n".join(lines) + "\n"


def _carat_text(mct: int) -> str:
    """Millicarats as the carat text :func:`parse_carats` reads, without trailing zeros: 500 -> ``0.5``."""
    return f"{mct // 1000}" + (f".{mct % 1000:03d}".rstrip("0") if mct % 1000 else "")


def _known_keys(types: dict[str, object]) -> list[str]:
    """The keys a policy file takes: the carat keys in place of the millicarat fields, which are named after."""
    by_field = {field: key for key, field in CARAT_KEYS.items()}
    return [by_field.get(name, name) for name in types] + list(by_field)


def _read_value(kind: object, raw: str) -> object:
    if kind == "frozenset[str]":
        return parse_countries(raw.upper())  # ru is RU, as on the command line
    if kind == "bool":
        if raw not in ("true", "false"):
            raise PolicyError(f"expected true or false, got {raw!r}")
        return raw == "true"
    if not _INTEGER.fullmatch(raw):
        raise PolicyError(f"expected an integer number of millicarats (e.g. 500 for 0.5 ct; the _ct key takes "
                          f"carats), got {raw!r}")
    return int(raw)
