"""A bundle's JSON text (docs/format.md §7a.6): one canonical text per bundle, and every text two JSON parsers could
read as two bundles refused with its code. The attack each test stops: Python's ``json`` keeps the last of two
equal names, other parsers the first; ``1.0``, ``1e0`` and ``2**53 + 1`` read differently as doubles; a BOM,
non-UTF-8 bytes or an escaped lone surrogate are read, replaced or refused depending on the parser."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger import bundle_from_json_text, bundle_to_json_text
from ledger._bundle_json import MAX_BUNDLE_JSON_SIZE, MAX_JSON_INT
from ledger.bundle import build_bundle, bundle_from_json, bundle_to_json
from ledger.errors import BundleFormatError
from ledger.hashing import Digest
from stonetrail_cli.main import main

#: A real signed checkpoint (read, never written): its signature line holds U+2014, escaped in the JSON text.
NOTE = (Path(__file__).parent / "vectors" / "checkpoint.txt").read_text(encoding="utf-8")
H = Digest(bytes(range(32)))


def _bundle(note: str = NOTE, index: int = 3) -> bytes:
    return build_bundle("S1", note, [(index, b"record bytes", [H, H]), (index + 4, b"\x00\xff", [])],
                        [("S1", 0, [H])])


def _refused(text: bytes) -> str:
    with pytest.raises(BundleFormatError) as info:
        bundle_from_json_text(text)
    return info.value.code


@pytest.fixture(scope="module")
def data() -> bytes:
    return _bundle()


@pytest.fixture(scope="module")
def text(data: bytes) -> bytes:
    return bundle_to_json_text(data)


# --- the canonical text -----------------------------------------------------------------------------------------

def test_the_canonical_text_reads_back_to_the_same_bytes(data: bytes, text: bytes) -> None:
    assert bundle_from_json_text(text) == data
    assert json.loads(text) == bundle_to_json(data)
    assert text.isascii() and text.endswith(b"}\n") and text.count(b"\n") == 1 and b"\\u2014" in text
    # the definition of docs/format.md §7a.6, in Python's terms: sorted members, no whitespace, ASCII escapes
    assert text == (json.dumps(json.loads(text), sort_keys=True, separators=(",", ":")) + "\n").encode()


def test_a_bundle_without_a_json_rendering_says_so() -> None:
    too_big = _bundle(index=MAX_JSON_INT + 1)
    with pytest.raises(BundleFormatError) as info:
        bundle_to_json_text(too_big)
    assert info.value.code == "bundle.json_number"
    assert bundle_from_json_text(bundle_to_json_text(_bundle(index=MAX_JSON_INT - 4))) == _bundle(
        index=MAX_JSON_INT - 4)


def test_proof_show_json_prints_the_canonical_text(tmp_path: Path, data: bytes, text: bytes) -> None:
    path = tmp_path / "S1.stproof"
    path.write_bytes(data)
    shown = CliRunner().invoke(main, ["proof", "show", str(path), "--json"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout_bytes == text and bundle_from_json_text(shown.stdout_bytes) == data


# --- each ambiguity, refused by name ------------------------------------------------------------------------------

def _swap(text: bytes, old: bytes, new: bytes) -> bytes:
    assert text.count(old) >= 1, old
    return text.replace(old, new, 1)


def test_a_name_twice_is_refused(text: bytes) -> None:
    twice = _swap(text, b"{", b'{"item":"S9",')
    # Python's json keeps the last "item" (S1), a first-wins parser reads S9: two bundles from one text.
    assert bundle_from_json(json.loads(twice)) == bundle_from_json(json.loads(text))
    assert _refused(twice) == "bundle.json_duplicate_key"
    nested = _swap(text, b'{"heads_index":0,', b'{"heads_index":0,"heads_index":5,')
    assert _refused(nested) == "bundle.json_duplicate_key"


@pytest.mark.parametrize("number", [b"3.0", b"3e0", b"3E+0", b"0.3e1", b"NaN", b"Infinity", b"-Infinity", b"-0",
                                    str(MAX_JSON_INT + 1).encode(), str(-MAX_JSON_INT - 1).encode(), b"9" * 5000])
def test_numbers_other_parsers_read_otherwise_are_refused(text: bytes, number: bytes) -> None:
    assert _refused(_swap(text, b'"leaf_index":3', b'"leaf_index":' + number)) == "bundle.json_number"


@pytest.mark.parametrize(("change", "code"), [
    (lambda t: b"\xef\xbb\xbf" + t, "bundle.json_encoding"),  # a byte order mark
    (lambda t: t.replace(b"S1", b"S\xff", 1), "bundle.json_encoding"),  # not UTF-8
    (lambda t: t.replace(b"S1", b"S\xc0\xb1", 1), "bundle.json_encoding"),  # an overlong UTF-8 "1"
    (lambda t: t.replace(b"\\u2014", b"\\ud800", 1), "bundle.json_encoding"),  # an escaped lone surrogate
    (lambda t: t.replace(b"\\u2014", b"\\udc00\\u2014", 1), "bundle.json_encoding"),
    (lambda t: t + b"{}", "bundle.json_syntax"),  # trailing data
    (lambda t: t[:-2], "bundle.json_syntax"),  # cut short
    (lambda t: t.replace(b'"leaf_index":3', b'"leaf_index":03', 1), "bundle.json_syntax"),  # leading zero
    (lambda t: t.replace(b'"S1"', b"'S1'", 1), "bundle.json_syntax"),
    (lambda t: b"[" * 100_000 + b"]" * 100_000, "bundle.json_syntax"),  # nesting deeper than any parser's stack
    (lambda t: t.replace(b"\\u2014", "\u2014".encode(), 1), "bundle.json_non_canonical"),  # UTF-8, not escaped
    (lambda t: t.replace(b'"S1"', b'"\\u00531"', 1), "bundle.json_non_canonical"),  # "S1", escaped
    (lambda t: t.replace(b"\\n", b"\\u000a", 1), "bundle.json_non_canonical"),
    (lambda t: t.replace(b"/", b"\\/", 1), "bundle.json_non_canonical"),
    (lambda t: t + b"\n", "bundle.json_non_canonical"),  # whitespace JSON allows
    (lambda t: t[:-1], "bundle.json_non_canonical"),  # no final line feed
    (lambda t: t.replace(b":", b": ", 1), "bundle.json_non_canonical"),
    (lambda t: json.dumps(json.loads(t), indent=2).encode(), "bundle.json_non_canonical"),
    (lambda t: json.dumps(json.loads(t)).encode() + b"\n", "bundle.json_non_canonical"),  # members out of order
    (lambda t: json.dumps({k: v for k, v in sorted(json.loads(t).items()) if k != "origin"}, sort_keys=True,
                          separators=(",", ":")).encode() + b"\n", "bundle.json_non_canonical"),  # derived left out
    (lambda t: t.replace(b'"S1"', b'"S 1"', 1), "bundle.malformed"),  # a value that is no bundle
    (lambda t: b"[]\n", "bundle.malformed"),
])
def test_every_other_rendering_is_refused(text: bytes, change: Any, code: str) -> None:
    changed = change(text)
    assert changed != text
    assert _refused(changed) == code


def test_size_and_type_are_checked_first() -> None:
    assert _refused(b" " * (MAX_BUNDLE_JSON_SIZE + 1)) == "bundle.too_large"
    with pytest.raises(BundleFormatError):
        bundle_from_json_text("{}")  # type: ignore[arg-type]


# --- properties -------------------------------------------------------------------------------------------------

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,8}", fullmatch=True)
hashes = st.lists(st.binary(min_size=32, max_size=32).map(Digest), max_size=3)
bundles = st.builds(
    lambda item, note, entries, heads: build_bundle(item, note, entries, heads),
    ids, st.one_of(st.just(NOTE), st.text(max_size=40)),
    st.dictionaries(st.integers(0, MAX_JSON_INT), st.tuples(st.binary(min_size=1, max_size=40), hashes),
                    max_size=4).map(lambda d: [(i, leaf, proof) for i, (leaf, proof) in d.items()]),
    st.dictionaries(ids, st.tuples(st.integers(0, MAX_JSON_INT), hashes), max_size=3).map(
        lambda d: [(item, i, proof) for item, (i, proof) in d.items()]))


@settings(max_examples=200, deadline=None)
@given(bundles)
def test_any_bundle_round_trips_through_its_text(data: bytes) -> None:
    text = bundle_to_json_text(data)
    assert bundle_from_json_text(text) == data
    assert bundle_from_json(json.loads(text)) == data  # what a lenient reader of the same text gets


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        out.setdefault(name, value)
    return out


MUTATIONS = st.one_of(
    st.tuples(st.just("replace"), st.integers(0, 10**6), st.binary(min_size=1, max_size=3)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.sampled_from(
        [b" ", b"\n", b"\t", b"\r", b",", b"0", b"-", b".0", b"e1", b"\\", b'"', b"\\u0041", b"{", b"}", b"[", b"]",
         b'"item":"S1",', b"\xef\xbb\xbf", b"\xc3\xa9", b"\\ud800", b"null", b"1"])),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 4)),
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([_bundle(), _bundle(note="a\nb \u00e9\U0001f48e\n", index=0)]),
       st.lists(MUTATIONS, min_size=1, max_size=3))
def test_a_mutated_text_is_refused_or_means_one_bundle(data: bytes, mutations: list[tuple[str, int, Any]]) -> None:
    text = bundle_to_json_text(data)
    for op, at, arg in mutations:
        at %= len(text) + 1
        text = (text[:at] + arg + text[at + len(arg):] if op == "replace" else
                text[:at] + arg + text[at:] if op == "insert" else text[:at] + text[at + arg:])
    try:
        got = bundle_from_json_text(text)
    except BundleFormatError:
        return  # refused: typed, never a crash
    # Accepted: the text is the canonical text of what it decodes to, so a last-wins and a first-wins parser,
    # and any reader that goes through the value, read the same bundle.
    assert bundle_to_json_text(got) == text
    assert bundle_from_json(json.loads(text)) == got
    assert bundle_from_json(json.loads(text, object_pairs_hook=_first_wins)) == got
