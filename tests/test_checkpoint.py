"""ledger.checkpoint: C2SP signed notes and tlog-checkpoints, against the Go/C2SP vectors and mutations."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.checkpoint import (
    MAX_SIGNATURES,
    Checkpoint,
    format_checkpoint,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    sign_checkpoint,
    sign_note,
)
from ledger.errors import (
    KeyFormatError,
    NoteFormatError,
    SignatureError,
    StoneTrailError,
    UnverifiedNoteError,
    VerificationError,
)
from ledger.hashing import Digest, sha256
from ledger.keys import NoteVerifierKey, PrivateKey, note_verifier_key, parse_note_signer_key

VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "vectors"
NOTE_VECTORS = VECTORS / "signed-note" / "signed-note-vectors.json"
C2SP_EXAMPLES = VECTORS / "c2sp-format-examples"

ORIGIN = "stonetrail.example/ledger-1"
KEY = PrivateKey.from_seed(bytes(range(32)))
VKEY = note_verifier_key(ORIGIN, KEY.public_key)
ROOT = sha256(b"root")


def _vectors() -> dict[str, dict[str, Any]]:
    if not NOTE_VECTORS.exists():
        pytest.skip(f"shared vectors not found at {NOTE_VECTORS}")
    data = json.loads(NOTE_VECTORS.read_text())
    return {v["id"]: v for v in data["vectors"]}


# --- signed-note vectors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("vid", ["c2sp-signed-note-example", "go-note-peterneumann", "go-note-enochroot"])
def test_single_signer_vectors_verify(vid: str) -> None:
    v = _vectors()[vid]
    vkey = NoteVerifierKey.parse(v["vkey"])
    assert vkey.text() == v["vkey"]
    text, verified = open_note(v["note"], [vkey])
    assert v["note"].startswith(text) and text.endswith("\n")
    assert verified == [vkey]
    with pytest.raises(UnverifiedNoteError):
        open_note(v["note"], [])  # zero verifiers fail closed


def test_go_signer_key_reproduces_go_signature_byte_for_byte() -> None:
    v = _vectors()["go-note-peterneumann"]
    name, key = parse_note_signer_key(v["skey"])
    assert name == "PeterNeumann"
    assert note_verifier_key(name, key.public_key).text() == v["vkey"]
    text = v["note"][: v["note"].rindex("\n\n") + 1]
    assert sign_note(text, [(name, key)]) == v["note"]


def test_two_signers_each_alone_and_both() -> None:
    v = _vectors()["go-note-two-signers"]
    peter, enoch = (NoteVerifierKey.parse(s) for s in v["vkeys"])
    assert open_note(v["note"], [peter])[1] == [peter]  # Enoch's signature ignored as unknown
    assert open_note(v["note"], [enoch])[1] == [enoch]
    assert open_note(v["note"], [enoch, peter])[1] == [peter, enoch]  # in note order


def test_invalid_vkeys_refused() -> None:
    for text in _vectors()["go-note-bad-vkeys"]["invalid_vkeys"]:
        with pytest.raises(KeyFormatError) as err:
            NoteVerifierKey.parse(text)
        assert err.value.code == "note.bad_vkey"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.replace("+c74f20a3+", "+C74F20A3+"),  # uppercase hex
        lambda s: s.replace("+c74f20a3+", "+c74f20a4+"),  # wrong key ID
        lambda s: s.replace("+c74f20a3+", "+c74f20a+"),  # short ID
        lambda s: s.replace("PeterNeumann", "Peter Neumann"),
        lambda s: s.replace("PeterNeumann", ""),
        lambda s: s + "=",
        lambda s: s[:-1],
        lambda s: s.split("+")[0],
    ],
)
def test_vkey_strictness(mutate: Any) -> None:
    with pytest.raises(KeyFormatError) as err:
        NoteVerifierKey.parse(mutate(_vectors()["go-note-peterneumann"]["vkey"]))
    assert err.value.code == "note.bad_vkey"


def test_vkey_with_small_order_key_refused() -> None:
    b64 = base64.b64encode(b"\x01" + bytes.fromhex("01" + "00" * 31)).decode()
    with pytest.raises(KeyFormatError) as err:
        NoteVerifierKey.parse(f"x+00000000+{b64}")
    assert err.value.code == "note.bad_vkey"
    assert isinstance(err.value.__cause__, KeyFormatError)
    assert err.value.__cause__.code == "key.small_order"


def test_unknown_key_refused() -> None:
    v = _vectors()["go-note-peterneumann"]
    enoch = NoteVerifierKey.parse(_vectors()["go-note-enochroot"]["vkey"])
    with pytest.raises(UnverifiedNoteError) as err:
        open_note(v["note"], [enoch, VKEY])
    assert err.value.code == "note.unverified"


def test_same_name_other_key_is_unknown_not_invalid() -> None:
    """signed-note: ignore signatures from unknown keys even if they share a name with a known key."""
    other = note_verifier_key("PeterNeumann", KEY.public_key)
    with pytest.raises(UnverifiedNoteError):
        open_note(_vectors()["go-note-peterneumann"]["note"], [other])


def test_known_key_bad_signature_rejects_whole_note() -> None:
    v = _vectors()["go-note-two-signers"]
    peter, enoch = (NoteVerifierKey.parse(s) for s in v["vkeys"])
    text = v["note"][: v["note"].rindex("\n\n") + 1]
    forged = v["note"].replace(text, text.replace("cryptography", "cryptographx"))
    with pytest.raises(SignatureError) as err:
        open_note(forged, [peter, enoch])
    assert err.value.code == "sig.invalid"


def test_sumdb_tree_body_parses_as_checkpoint() -> None:
    v = _vectors()["go-sumdb-tree-note-body"]
    cp = parse_checkpoint(v["text"])
    assert cp.origin == "go.sum database tree" and cp.tree_size == 123456789012
    assert cp.root_hash == sha256(b"\x00hello world")
    assert format_checkpoint(cp) == v["text"]


@pytest.mark.parametrize("name", ["checkpoint.example.txt", "cosigned-checkpoint.example.txt"])
def test_c2sp_examples_parse_but_do_not_verify_without_their_key(name: str) -> None:
    path = C2SP_EXAMPLES / name
    if not path.exists():
        pytest.skip(f"missing {path}")
    note = path.read_text()
    cp = parse_checkpoint(note[: note.rindex("\n\n") + 1])
    assert (cp.origin, cp.tree_size) == ("example.com/behind-the-sofa", 20852163)
    with pytest.raises(UnverifiedNoteError):  # well-formed; signatures (incl. cosignatures) are unknown
        open_checkpoint(note, [VKEY])


# --- our own notes ----------------------------------------------------------------------------------------


def test_sign_and_open_checkpoint() -> None:
    cp = Checkpoint(origin=ORIGIN, tree_size=42, root_hash=ROOT, extensions=("ext one",))
    note = sign_checkpoint(cp, ORIGIN, KEY)
    assert note.startswith(format_checkpoint(cp) + "\n\u2014 " + ORIGIN + " ")
    assert open_checkpoint(note, [VKEY]) == cp
    assert open_checkpoint(note.encode(), [VKEY], origin=ORIGIN) == cp
    with pytest.raises(VerificationError) as err:
        open_checkpoint(note, [VKEY], origin="other.example/log")
    assert err.value.code == "checkpoint.origin_mismatch"
    with pytest.raises(UnverifiedNoteError):
        open_checkpoint(note, [])


def test_a_checkpoint_opens_only_under_a_key_named_after_its_origin() -> None:
    """ADR 0037 (an adversarial review): a key pinned under another name (another ledger's operator, or a key
    named for its year) never vouches for this origin's checkpoints; the same key pinned under the origin does."""
    cp = Checkpoint(origin=ORIGIN, tree_size=0, root_hash=ROOT)
    vkey = note_verifier_key("operator-key-2025", KEY.public_key)
    with pytest.raises(UnverifiedNoteError, match="named after its origin") as refused:
        open_checkpoint(sign_checkpoint(cp, "operator-key-2025", KEY), [vkey, VKEY], origin=ORIGIN)
    assert refused.value.code == "note.unverified" and "operator-key-2025+" in str(refused.value)
    assert open_checkpoint(sign_checkpoint(cp, ORIGIN, KEY), [vkey, VKEY], origin=ORIGIN) == cp


def test_every_flipped_byte_is_rejected() -> None:
    note = sign_checkpoint(Checkpoint(origin=ORIGIN, tree_size=7, root_hash=ROOT), ORIGIN, KEY).encode()
    for i in range(len(note)):
        for bit in (0x01, 0x80):
            mutated = bytearray(note)
            mutated[i] ^= bit
            with pytest.raises(StoneTrailError):
                open_checkpoint(bytes(mutated), [VKEY])


def test_truncations_and_extensions_rejected() -> None:
    note = sign_checkpoint(Checkpoint(origin=ORIGIN, tree_size=7, root_hash=ROOT), ORIGIN, KEY)
    for cut in range(len(note)):
        with pytest.raises(StoneTrailError):
            open_checkpoint(note[:cut], [VKEY])
    for bad in [note + "x", note + "\n", note.replace("\n\n", "\n\n\n"), "\ufeff" + note, note + "— x\n"]:
        with pytest.raises(StoneTrailError):
            open_checkpoint(bad, [VKEY])


def test_unknown_signature_lines_are_ignored_and_duplicates_skipped() -> None:
    cp = Checkpoint(origin=ORIGIN, tree_size=7, root_hash=ROOT)
    note = sign_checkpoint(cp, ORIGIN, KEY)
    witness = PrivateKey.from_seed(b"w" * 32)
    both = sign_note(format_checkpoint(cp), [(ORIGIN, KEY), ("witness.example/w1", witness)])
    assert open_checkpoint(both, [VKEY]) == cp
    sig_line = note[note.rindex("\n\n") + 2 :]
    assert open_note(note + sig_line, [VKEY])[1] == [VKEY]  # repeated signature: checked once, as in Go


def test_note_structure_errors() -> None:
    good = sign_note("hello\n", [(ORIGIN, KEY)])
    sig_line = good[len("hello\n\n") :]
    cases = [
        "hello\n",  # no signatures
        "hello\n\n",  # empty signature block
        "hello\n\n" + sig_line.rstrip("\n"),  # no final newline
        "hello\n\n" + sig_line.replace("\u2014", "-"),  # ASCII dash
        "hello\n\n" + sig_line.replace(" ", "  ", 1),
        "hello\n\n" + sig_line.replace(ORIGIN, "bad+name"),
        "hello\n\n" + "\u2014 x AAAA\n",  # under 5 bytes
        "hello\r\n\n" + sig_line,  # control character
        "hel\x00lo\n\n" + sig_line,
        "hello\n\n" + sig_line * (MAX_SIGNATURES + 1),
        "x" * (1024 * 1024) + "\n\n" + sig_line,  # over the size cap
    ]
    for case in cases:
        with pytest.raises(NoteFormatError):
            open_note(case, [VKEY])
    with pytest.raises(NoteFormatError):
        open_note(b"hello\n\n\xff" + sig_line.encode(), [VKEY])  # not UTF-8
    with pytest.raises(NoteFormatError) as named:  # a file's name where its text belongs: said so
        open_note("out/checkpoint.txt", [VKEY])
    assert "'out/checkpoint.txt': a file name?" in str(named.value)


def test_sign_note_preconditions() -> None:
    for text in ["no newline", "a\x01\n", "\ud800\n"]:
        with pytest.raises(NoteFormatError):
            sign_note(text, [(ORIGIN, KEY)])
    for signers in [[], [(ORIGIN, KEY), (ORIGIN, KEY)], [("bad name", KEY)]]:
        with pytest.raises(NoteFormatError):
            sign_note("t\n", signers)


def test_text_with_blank_lines_round_trips() -> None:
    """signed-note: the text MAY contain empty lines; it ends at the last blank line."""
    text = "a\n\n\u2014 not a signature\n\n"
    assert open_note(sign_note(text, [(ORIGIN, KEY)]), [VKEY])[0] == text


def test_ambiguous_verifiers_refused() -> None:
    fake = NoteVerifierKey.__new__(NoteVerifierKey)
    object.__setattr__(fake, "name", ORIGIN)
    object.__setattr__(fake, "key_id", VKEY.key_id)
    object.__setattr__(fake, "public_key", PrivateKey.generate().public_key)
    with pytest.raises(KeyFormatError) as err:
        open_note(sign_note("t\n", [(ORIGIN, KEY)]), [VKEY, fake])
    assert err.value.code == "note.ambiguous_vkey"
    assert open_note(sign_note("t\n", [(ORIGIN, KEY)]), [VKEY, VKEY])[1] == [VKEY]


# --- checkpoint body --------------------------------------------------------------------------------------

line = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)


@given(
    origin=line,
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(line, max_size=3),
)
def test_format_parse_round_trip(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    cp = Checkpoint(origin=origin, tree_size=size, root_hash=Digest(root), extensions=tuple(extensions))
    text = format_checkpoint(cp)
    assert parse_checkpoint(text) == cp
    assert format_checkpoint(parse_checkpoint(text)) == text


B64 = ROOT.b64()
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
#: The same 32 bytes as B64 with the 2 unused low bits of the last data character set: non-canonical.
B64_NON_CANONICAL = B64[:-2] + _ALPHABET[_ALPHABET.index(B64[-2]) | 3] + "="


@pytest.mark.parametrize(
    "size",
    [
        "+5",
        "-5",
        "05",
        "00",
        "\u0665",
        "1_0",
        " 5",
        "5 ",
        "",
        "0x5",
        "5.0",
        "18446744073709551616",
        "1" * 400,
    ],
)
def test_strict_size_rejections(size: str) -> None:
    with pytest.raises(NoteFormatError) as err:
        parse_checkpoint(f"{ORIGIN}\n{size}\n{B64}\n")
    assert err.value.code == "checkpoint.size"


@pytest.mark.parametrize(
    "text",
    [
        f"{ORIGIN}\n5\n{B64}",  # missing final newline
        f"{ORIGIN}\n5\n",  # missing root line
        f"\n5\n{B64}\n",  # empty origin
        f"{ORIGIN}\n5\n{B64[:-1]}\n",  # bad padding
        f"{ORIGIN}\n5\n{B64.rstrip('=')}\n",
        f"{ORIGIN}\n5\n{sha256(b'x').hex()}\n",  # hex, not base64
        f"{ORIGIN}\n5\n{B64_NON_CANONICAL}\n",
        f"{ORIGIN}\n5\n {B64}\n",
        f"{ORIGIN}\n5\n{Digest(bytes(32)).b64()[:-4]}\n",  # 30 bytes
        f"{ORIGIN}\n5\n{B64}\n\n",  # empty extension line
        f"{ORIGIN}\n5\n{B64}\r\n",
        f"{ORIGIN}\r\n5\n{B64}\n",
    ],
)
def test_strict_body_rejections(text: str) -> None:
    assert base64.b64decode(B64_NON_CANONICAL) == ROOT and B64_NON_CANONICAL != B64
    with pytest.raises(NoteFormatError):
        parse_checkpoint(text)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"origin": "", "tree_size": 1, "root_hash": ROOT},
        {"origin": "a\nb", "tree_size": 1, "root_hash": ROOT},
        {"origin": ORIGIN, "tree_size": -1, "root_hash": ROOT},
        {"origin": ORIGIN, "tree_size": 2**64, "root_hash": ROOT},
        {"origin": ORIGIN, "tree_size": True, "root_hash": ROOT},
        {"origin": ORIGIN, "tree_size": 1, "root_hash": b"\x00" * 31},
        {"origin": ORIGIN, "tree_size": 1, "root_hash": ROOT, "extensions": ("",)},
        {"origin": ORIGIN, "tree_size": 1, "root_hash": ROOT, "extensions": ["x"]},
    ],
)
def test_checkpoint_validates_on_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(NoteFormatError):
        Checkpoint(**kwargs)


# --- why a note is refused ----------------------------------------------------------------------------------------


def test_an_unverified_note_says_why_no_key_of_that_name_or_another_key_or_another_ledger() -> None:
    """Issue 9: not a bare note.unverified. A key pinned under another name (the README's keygen example), another
    key under the signer's name, and a checkpoint of another ledger are each named, the code kept."""
    note = sign_checkpoint(Checkpoint(origin=ORIGIN, tree_size=1, root_hash=ROOT), ORIGIN, KEY)
    assert open_checkpoint(note, [VKEY], origin=ORIGIN).tree_size == 1  # the accepted neighbour
    other = PrivateKey.from_seed(bytes(range(1, 33))).public_key
    cases = {
        f"no trusted key is named {ORIGIN}": [note_verifier_key("example.com/ledger", KEY.public_key)],
        f"has key ID {note_verifier_key(ORIGIN, other).key_id.hex()}, so this is another key": [
            note_verifier_key(ORIGIN, other)],
    }
    for why, trusted in cases.items():
        with pytest.raises(UnverifiedNoteError) as err:
            open_checkpoint(note, trusted)
        assert err.value.code == "note.unverified" and why in str(err.value), str(err.value)
        assert f"signed by {ORIGIN}+{VKEY.key_id.hex()}" in str(err.value)
        assert f"trusted: {trusted[0].name}+{trusted[0].key_id.hex()}" in str(err.value)
    with pytest.raises(UnverifiedNoteError) as elsewhere:
        open_checkpoint(note, [note_verifier_key("example.com/other", other)], origin="example.com/other")
    assert elsewhere.value.code == "note.unverified"
    assert str(elsewhere.value).startswith(f"a checkpoint of another ledger ({ORIGIN}, not example.com/other)")
    with pytest.raises(UnverifiedNoteError) as nothing:
        open_note(note, [])
    assert "no trusted key was given" in str(nothing.value)
