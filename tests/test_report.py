"""``proof report`` and ``proof annex`` without a browser: the annexes of the demo's stories (issue 14's
acceptance), escaping in the HTML text, the CLI's refusals, and the largest demo stone's render time and size
(figures printed; only the size is asserted). The page in a real browser: tests/test_report_browser.py."""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from markupsafe import escape
from report_kit import (
    CVD,
    DIAVIK,
    ESTATE,
    HOSTILE_ITEM,
    KAROWE,
    LAUNDERED,
    PAYLOADS,
    RING,
    RINGED,
    demo_bundle,
    hostile_bundle,
)

from ledger import Policy
from ledger.annex import FORMATS, build_annex
from ledger.bundle import check_bundle
from ledger.dossier import dossier_of
from ledger.errors import ArgumentError, RecordFormatError, RuleError
from ledger.events import Mined
from ledger.report import render_report, report_html
from stonetrail_cli.main import main

NO_RU = Policy(deny_origin=frozenset({"RU"}))


def _annex(demo: Path, item: str, fmt: str, policy: Policy | None = None) -> dict[str, object]:
    data, trust = demo_bundle(demo, item)
    return build_annex(dossier_of(check_bundle(data, trust, policy), data), fmt).to_json()


def _mining(annex: dict[str, object]) -> dict[str, tuple[str, str]]:
    shares = annex["countries_of_mining"]
    assert isinstance(shares, list)
    return {s["country"]: (s["carats"], s["percent"]) for s in shares}


@pytest.mark.parametrize("fmt", FORMATS)
def test_laundered_stone_lists_ru_and_ao_with_their_shares(demo: Path, fmt: str) -> None:
    annex = _annex(demo, LAUNDERED, fmt, NO_RU)
    assert _mining(annex) == {"AO": ("0.750", "60.0"), "RU": ("0.500", "40.0")}
    assert annex["verdict"] == "valid_not_compliant"
    shares = {s["country"]: s for s in annex["countries_of_mining"]}  # type: ignore[union-attr]
    assert shares["RU"]["basis"] == "attested by producer-udachny, proven consistent by the ledger"
    assert annex["country_of_origin"]["country"] == "IN"  # type: ignore[index]
    if fmt == "us-cbp":  # one entry line per country of mining
        assert [(ln["country_of_mining"], ln["country_of_origin"]) for ln in annex["lines"]] == [  # type: ignore
            ("AO", "IN"), ("RU", "IN")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_karowe_stone_is_mined_in_botswana_only(demo: Path, fmt: str) -> None:
    annex = _annex(demo, KAROWE, fmt)
    assert _mining(annex) == {"BW": ("302.370", "100.0")}
    assert annex["country_of_origin"]["country"] == "GB"  # type: ignore[index]  # cut in London
    links = annex["rough_to_polished"]
    assert [link["value"].split(" -> ")[0] for link in links] == ["split R-KAROWE-1109"]  # type: ignore


@pytest.mark.parametrize("fmt", FORMATS)
def test_diavik_stone_cut_in_ramat_gan_is_mined_in_ca_and_of_origin_il(demo: Path, fmt: str) -> None:
    annex = _annex(demo, DIAVIK, fmt)
    assert _mining(annex) == {"CA": ("1.420", "100.0")}
    origin = annex["country_of_origin"]
    assert origin["country"] == "IL" and origin["signed_by"] == ["cutter-ramatgan (manufacturer)"]  # type: ignore
    assert [c["value"] for c in annex["kp_certificates"]][-1].endswith("imported IL -> US")  # type: ignore
    assert annex["lab_reports"] and all(len(c["record_hash"]) == 64 for c in annex["lab_reports"])  # type: ignore


def test_main_story_annex_names_g7_verification_and_kp_authority(demo: Path) -> None:
    annex = _annex(demo, RINGED, "eu-dds")
    verified = annex["g7_verifications"]
    assert len(verified) == 1 and "node-antwerp (node)" in verified[0]["signed_by"]  # type: ignore
    assert any("kp_authority" in s for c in annex["kp_certificates"] for s in c["signed_by"])  # type: ignore
    assert "physically" not in json.dumps(annex)


def test_cli_annex_json_csv_and_exit_code(demo: Path, tmp_path: Path) -> None:
    data, _ = demo_bundle(demo, LAUNDERED)
    (tmp_path / "b.stproof").write_bytes(data)
    args = ["proof", "annex", str(tmp_path / "b.stproof"), "--trust", str(demo / "trust.keys")]
    res = CliRunner().invoke(main, [*args, "--format", "us-cbp", "--csv", "--deny-origin", "RU"])
    assert res.exit_code == 1, res.output  # not compliant: the verdict's exit code
    rows = list(csv.DictReader(io.StringIO(res.stdout)))  # the not-compliant warning is on stderr
    assert [(r["country_of_mining"], r["carats"], r["percent"]) for r in rows] == [
        ("AO", "0.750", "60.0"), ("RU", "0.500", "40.0")]
    res = CliRunner().invoke(main, [*args, "--format", "eu-dds", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["format"] == "eu-dds"
    res = CliRunner().invoke(main, [*args, "--format", "eu-dds"])
    assert res.exit_code == 0 and "country_of_mining  RU 0.500 ct (40.0%)" in res.output


def test_cli_refuses_an_invalid_bundle_and_writes_nothing(demo: Path, tmp_path: Path) -> None:
    data, _ = demo_bundle(demo, DIAVIK)
    bad = bytearray(data)
    at = bad.find(b"cutter-ramatgan")
    bad[at] ^= 0x01  # one bit of one signed record
    (tmp_path / "bad.stproof").write_bytes(bytes(bad))
    out = tmp_path / "bad.html"
    res = CliRunner().invoke(main, ["proof", "report", str(tmp_path / "bad.stproof"), "--trust",
                                    str(demo / "trust.keys"), "-o", str(out)])
    assert res.exit_code == 1 and not out.exists(), res.output
    report = check_bundle(bytes(bad), demo_bundle(demo, DIAVIK)[1])
    with pytest.raises(ArgumentError):
        dossier_of(report, bytes(bad))
    with pytest.raises(RuleError):
        render_report(bytes(bad), demo_bundle(demo, DIAVIK)[1])


def test_cli_report_writes_once(demo: Path, tmp_path: Path) -> None:
    data, _ = demo_bundle(demo, KAROWE)
    (tmp_path / "k.stproof").write_bytes(data)
    args = ["proof", "report", str(tmp_path / "k.stproof"), "--trust", str(demo / "trust.keys"),
            "-o", str(tmp_path / "k.html"), "--json"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["verdict"] == "valid"
    assert "P-LESEDI-01" in (tmp_path / "k.html").read_text(encoding="utf-8")
    assert CliRunner().invoke(main, args).exit_code != 0  # never overwritten


def test_free_text_payloads_render_as_text(tmp_path: Path) -> None:
    data, trust = hostile_bundle(tmp_path)
    html = render_report(data, trust)
    body = html.split("<body>", 1)[1]
    for payload in PAYLOADS:  # escaped, so each shows as the characters it is made of
        assert payload not in body
        assert str(escape(payload)) in body
    assert re.findall(r"<(script|img|iframe|object)\b", html, re.IGNORECASE) == []
    assert not re.search(r"<[^>]*\son(error|load)\s*=", body)
    assert HOSTILE_ITEM in body and "default-src 'none'" in html


def test_records_refuse_bidi_and_control_characters() -> None:
    for bad in ("evil\u202egnp.exe", "two\nlines", "zero\u200bwidth"):
        with pytest.raises(RecordFormatError):
            Mined(mine=bad, country="BW")


def test_largest_demo_stone_report_figures(demo: Path) -> None:
    """The largest demo stone (the 302.370 ct cut of the 1,109 ct Karowe rough) and the largest bundle of the
    demo's stories: render time from the bundle (printed, not asserted) and page size (at most 500 KB)."""
    for item in (KAROWE, RINGED, LAUNDERED):
        data, trust = demo_bundle(demo, item)
        render_report(data, trust, NO_RU)  # warm: the template compiles once per process
        start = time.perf_counter()
        html = render_report(data, trust, NO_RU).encode("utf-8")
        elapsed_ms = (time.perf_counter() - start) * 1000
        print(f"report {item}: bundle {len(data)} bytes, render {elapsed_ms:.1f} ms, html {len(html) / 1000:.1f} KB")
        assert len(html) <= 500_000


def test_show_and_proof_verify_print_the_journey_as_one_aligned_table(demo: Path, tmp_path: Path) -> None:
    """Both commands print the same table (header, one row per record, its text below); colour only when asked
    for a terminal (CliRunner's ``color=True``), never in a pipe."""
    data, _ = demo_bundle(demo, DIAVIK)
    (tmp_path / "d.stproof").write_bytes(data)
    trust = str(demo / "trust.keys")
    runner = CliRunner()
    verified = runner.invoke(main, ["proof", "verify", str(tmp_path / "d.stproof"), "--trust", trust]).output
    shown = runner.invoke(main, ["show", str(demo / "demo.ledger"), DIAVIK, "--trust", trust]).output

    def table(output: str) -> list[str]:
        lines = output.splitlines()
        start = next(n for n, line in enumerate(lines) if line.lstrip().startswith("record  when (UTC)"))
        return lines[start:start + 1 + 2 * 10]

    assert table(verified) == table(shown)
    header, rows = table(verified)[0], table(verified)[1::2]
    for column in ("event", "where", "item", "holder", "state", "signed by"):  # left-aligned
        at = header.index(column)
        assert all(row[at - 2:at] == "  " and row[at] != " " for row in rows), (column, rows)
    assert "\x1b[" not in verified
    coloured = runner.invoke(main, ["proof", "verify", str(tmp_path / "d.stproof"), "--trust", trust], color=True)
    assert "\x1b[" in coloured.output


def test_a_part_merged_back_into_the_line_is_drawn_and_linked(tmp_path: Path) -> None:
    """An adversarial review: L0 split in three, two parts merged back, the result split: the report crashed
    (KeyError 'L0-2': the part has no record of its own on the path) and the annex left out 'split L0 -> L0-2'."""
    from report_kit import rejoined_bundle

    data, trust = rejoined_bundle(tmp_path)
    report = check_bundle(data, trust)
    dossier = dossier_of(report, data)
    html = report_html(dossier)
    assert "L0-2" in html
    links = [c.value for c in build_annex(dossier, "eu-dds").claims if c.field == "link"]
    assert any(link.startswith("split L0 -> L0-2") for link in links)
    assert any(link.startswith("merged L0-1, L0-2 -> M") for link in links)


# --- issue 14's new-user trial ---------------------------------------------------------------------------------


def _bundle_file(demo: Path, tmp_path: Path, item: str) -> list[str]:
    data, _ = demo_bundle(demo, item)
    (tmp_path / f"{item}.stproof").write_bytes(data)
    return [str(tmp_path / f"{item}.stproof"), "--trust", str(demo / "trust.keys")]


def _runner() -> CliRunner:
    return CliRunner()  # click >= 8.2: stdout and stderr apart (res.stdout, res.stderr)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("form", ["text", "--csv", "--json"])
def test_every_annex_form_says_not_compliant_with_the_rule_and_each_finding(demo: Path, tmp_path: Path,
                                                                            fmt: str, form: str) -> None:
    args = ["proof", "annex", *_bundle_file(demo, tmp_path, LAUNDERED), "--format", fmt, "--deny-origin", "RU"]
    res = _runner().invoke(main, args + ([form] if form != "text" else []))
    assert res.exit_code == 1, res.output
    out = res.stdout
    if form == "--json":
        data = json.loads(out)
        assert data["verdict_text"] == "valid, NOT COMPLIANT (3 policy findings)" and data["compliant"] is False
        assert data["policy"] == ["no origin in or route through RU (every item)"]
        assert [(f["code"], f["record"]) for f in data["policy_findings"]] == [
            ("policy.denied_origin", 674), ("policy.denied_origin", 680), ("policy.denied_origin", 683)]
        assert all(f["reason"] for f in data["policy_findings"])
        return
    assert "valid, NOT COMPLIANT" in out and "no origin in or route through RU" in out
    for record in ("674", "680", "683"):
        assert any("policy.denied_origin" in line and re.search(rf"\b{record}\b", line)
                   for line in out.splitlines()), out
    if form == "--csv":
        assert "NOT COMPLIANT" in res.stderr and len(res.stderr.strip().splitlines()) == 1
        rows = list(csv.reader(io.StringIO(out)))
        assert len({len(r) for r in rows}) == 1  # still one table
    else:
        assert out.splitlines()[1] == "item: PARCEL-DXB-01-S1 (stone, natural, 1.250 ct)"


def test_us_cbp_text_prints_its_entry_lines(demo: Path, tmp_path: Path) -> None:
    args = ["proof", "annex", *_bundle_file(demo, tmp_path, LAUNDERED)]
    us = _runner().invoke(main, [*args, "--format", "us-cbp"]).stdout
    eu = _runner().invoke(main, [*args, "--format", "eu-dds"]).stdout
    assert us != eu and "line 1" not in eu
    assert re.search(r"line 1: PARCEL-DXB-01-S1, country of mining AO, 0\.750 ct \(60\.0%\), country of origin IN", us)
    assert re.search(r"line 2: PARCEL-DXB-01-S1, country of mining RU, 0\.500 ct \(40\.0%\), country of origin IN", us)


@pytest.mark.parametrize(("command", "form"), [
    (["annex", "--format", fmt], form) for fmt in FORMATS for form in ("--json", "--csv")] + [(["report"], "--json")])
def test_an_invalid_bundle_under_json_or_csv_prints_no_stray_line(demo: Path, tmp_path: Path, command: list[str],
                                                                   form: str) -> None:
    data, _ = demo_bundle(demo, DIAVIK)
    bad = bytearray(data)
    bad[bad.find(b"cutter-ramatgan")] ^= 0x01
    (tmp_path / "bad.stproof").write_bytes(bytes(bad))
    args = ["proof", command[0], str(tmp_path / "bad.stproof"), "--trust", str(demo / "trust.keys"), *command[1:],
            form] + (["-o", str(tmp_path / "bad.html")] if command == ["report"] else [])
    res = _runner().invoke(main, args)
    assert res.exit_code == 1
    if form == "--json":
        doc = json.loads(res.stdout)  # one JSON document, nothing else
        assert doc["verdict"] == "invalid" and doc["findings"]
    else:
        assert res.stdout == "" and "INVALID" in res.stderr and "sig." in res.stderr


def test_report_says_the_verdict_words_and_writes_to_stdout_for_a_dash(demo: Path, tmp_path: Path) -> None:
    args = ["proof", "report", *_bundle_file(demo, tmp_path, LAUNDERED), "--deny-origin", "RU"]
    res = _runner().invoke(main, [*args, "-o", str(tmp_path / "l.html")])
    assert res.exit_code == 1 and res.stdout.rstrip().endswith("PARCEL-DXB-01-S1, valid, NOT COMPLIANT"), res.stdout
    res = _runner().invoke(main, [*args, "-o", "-"], catch_exceptions=False)
    assert res.exit_code == 1 and res.stdout.startswith("<!DOCTYPE html>")
    assert not (Path.cwd() / "-").exists()


def test_annex_writes_a_file_or_stdout_for_a_dash(demo: Path, tmp_path: Path) -> None:
    args = ["proof", "annex", *_bundle_file(demo, tmp_path, DIAVIK), "--format", "us-cbp", "--csv"]
    res = _runner().invoke(main, [*args, "-o", "-"])
    assert res.exit_code == 0 and res.stdout.startswith("line,item,") and not (Path.cwd() / "-").exists()
    res = _runner().invoke(main, [*args, "-o", str(tmp_path / "a.csv")])
    assert res.exit_code == 0 and (tmp_path / "a.csv").read_text(encoding="utf-8").startswith("line,item,")
    assert _runner().invoke(main, [*args, "-o", str(tmp_path / "a.csv")]).exit_code != 0  # never overwritten


def test_a_missing_format_is_a_one_line_error(demo: Path, tmp_path: Path) -> None:
    res = _runner().invoke(main, ["proof", "annex", *_bundle_file(demo, tmp_path, DIAVIK)])
    assert res.exit_code == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "eu-dds, us-cbp" in res.stderr, res.stderr


def _page_text(demo: Path, item: str, policy: Policy | None = None) -> str:
    """The report's visible text, one space between words."""
    data, trust = demo_bundle(demo, item)
    body = render_report(data, trust, policy).split("<body>", 1)[1]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_lab_grown_stone_has_a_country_of_growth_never_of_mining(demo: Path, fmt: str) -> None:
    data, trust = demo_bundle(demo, CVD)
    found = build_annex(dossier_of(check_bundle(data, trust), data), fmt)
    annex = found.to_json()
    assert "countries_of_mining" not in annex and annex["countries_of_growth"][0]["country"] == "IN"  # type: ignore
    assert "grower-surat (the grower)" in annex["countries_of_growth"][0]["basis"]  # type: ignore
    for text in (found.to_text(), found.to_csv(), json.dumps(annex)):
        assert "country_of_mining" not in text and "country of mining" not in text
        assert "laboratory-grown" in text or "lab_grown" in text
    assert "country_of_growth" in found.to_text()
    page = _page_text(demo, CVD)
    assert "country of mining" not in page.lower() and "laboratory-grown" in page
    assert "Nature laboratory-grown (fixed when it was grown in IN, attested by grower-surat" in page


def test_a_registered_stone_of_unknown_origin_says_where_its_nature_comes_from(demo: Path) -> None:
    page = _page_text(demo, ESTATE)
    assert "fixed when it was mined" not in page
    assert "Nature natural (attested at registration by trader-antwerp (record 697)" in page
    attested = page.split("Attested, not proven", 1)[1].split("Proven under the pinned keys", 1)[0]
    assert "its nature attested at registration by trader-antwerp" in attested
    assert "unknown (XX)" in page and "XX 1.070 ct 100.0% trader-antwerp, proven" not in page
    data, trust = demo_bundle(demo, ESTATE)
    text = build_annex(dossier_of(check_bundle(data, trust), data), "eu-dds").to_text()
    assert "country_of_mining  unknown (XX) 1.070 ct (100.0%)" in text and "attested by nobody" in text
    assert "attested by trader-antwerp, proven" not in text.split("country_of_origin")[0]


def test_an_articles_origin_comes_from_its_set_stones(demo: Path) -> None:
    annex = _annex(demo, RING, "us-cbp")
    origin = annex["country_of_origin"]
    assert origin["country"] == "IN" and origin["record"] == 331  # type: ignore[index]  # cut in Surat
    assert [ln["country_of_origin"] for ln in annex["lines"]] == ["IN"]  # type: ignore[union-attr]
    links = [link["value"] for link in annex["rough_to_polished"]]  # type: ignore[union-attr]
    assert any(v.startswith("split R-00001 -> R-00001-A") for v in links), links
    assert any(v.startswith("split R-00001 -> R-00001-B") for v in links), links


def test_each_root_record_is_named_with_its_own_item(demo: Path) -> None:
    annex = _annex(demo, LAUNDERED, "eu-dds")
    records = {s["country"]: s["records"] for s in annex["countries_of_mining"]}  # type: ignore[union-attr]
    assert records["AO"] == [{"record": 677, "record_hash": records["AO"][0]["record_hash"],
                              "item": "LOT-AO-CATOCA-X"}]
    data, trust = demo_bundle(demo, LAUNDERED)
    text = build_annex(dossier_of(check_bundle(data, trust), data), "eu-dds").to_text()
    assert "[LOT-AO-CATOCA-X, record 677]" in text and "[LOT-RU-UDACHNY, record 674]" in text
    assert "[PARCEL-DXB-01-S1, record 677]" not in text


def test_g7_verification_is_the_nodes_attestation_in_plain_words(demo: Path) -> None:
    annex = _annex(demo, RINGED, "eu-dds")
    g7 = annex["g7_verifications"][0]  # type: ignore[index]
    assert g7["value"] == "G7 origin verification record by node-antwerp in BE: origin BW (attested)"
    assert g7["basis"] == "attested by node-antwerp, proven consistent by the ledger"  # not the holder
    assert "node node-" not in json.dumps(annex) and "verified by" not in json.dumps(annex)
    page = _page_text(demo, RINGED, NO_RU)
    assert "node node-" not in page
    assert "compliant with every rule above, as judged over the records; origins are attested by the producers" \
        in page


def test_root_hash_is_base64_everywhere_people_see_it(demo: Path) -> None:
    b64 = next(line for line in (demo / "checkpoint.txt").read_text(encoding="utf-8").splitlines()[2:3])
    hexed = base64.b64decode(b64).hex()
    annex = _annex(demo, DIAVIK, "us-cbp")
    assert annex["checkpoint"]["root_hash"] == b64  # type: ignore[index]
    data, trust = demo_bundle(demo, DIAVIK)
    found = build_annex(dossier_of(check_bundle(data, trust), data), "us-cbp")
    for text in (found.to_text(), found.to_csv(), render_report(data, trust)):
        assert b64 in text and hexed not in text


def test_report_groups_what_it_could_not_check(demo: Path) -> None:
    data, trust = demo_bundle(demo, RINGED)
    page = render_report(data, trust)
    section = page.split("Not checked by this bundle", 1)[1].split("</section>", 1)[0]
    assert section.count("<li>") <= 5 < len(check_bundle(data, trust).unchecked)
    assert "and " in section and "more" in section  # counted, as proof verify does


def test_show_says_valid_as_verify_does(demo: Path) -> None:
    """In its text and its JSON verdict alike (a new user's review: the text said valid, the JSON verified)."""
    args = ["show", str(demo / "demo.ledger"), DIAVIK, "--trust", str(demo / "trust.keys")]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0 and "\nvalid: 10 records" in res.output and "verified:" not in res.output
    assert json.loads(CliRunner().invoke(main, [*args, "--json"]).stdout)["verdict"] == "valid"


@pytest.mark.parametrize(("env", "coloured"), [({}, True), ({"NO_COLOR": ""}, False), ({"NO_COLOR": "1"}, False),
                                               ({"TERM": "dumb"}, False)])
def test_colour_only_on_a_terminal_that_wants_it_and_the_verdict_in_colour(demo: Path, tmp_path: Path,
                                                                           env: dict[str, str], coloured: bool) -> None:
    args = ["proof", "verify", *_bundle_file(demo, tmp_path, LAUNDERED)]
    runner = CliRunner(env={"NO_COLOR": None, "TERM": "xterm", **env})  # type: ignore[dict-item]
    out = runner.invoke(main, args, color=True).output
    assert ("\x1b[" in out) is coloured
    bad = runner.invoke(main, [*args, "--deny-origin", "RU"], color=True).output.splitlines()[-1]
    ok = runner.invoke(main, args, color=True).output.splitlines()[-1]
    if coloured:
        assert "\x1b[31m" in bad and "NOT COMPLIANT" in bad and "\x1b[32m" in ok
    else:
        assert "\x1b[" not in bad + ok


# --- issue 14's adversarial review ---------------------------------------------------------------------------------

def test_a_stolen_stone_and_its_corrected_origin_are_said_first_in_the_report_and_the_annex(tmp_path: Path) -> None:
    from report_kit import stolen_bundle

    data, trust = stolen_bundle(tmp_path)
    dossier = dossier_of(check_bundle(data, trust), data)
    html = report_html(dossier)
    assert html.index("WARNING: STOLEN-1 is retired (retired: stolen") < html.index("Integrity:")
    for fmt in FORMATS:
        annex = build_annex(dossier, fmt)
        assert annex.warning is not None and "stolen" in annex.warning
        assert annex.to_json()["warning"] == annex.warning
        assert "warning" in annex.to_text() and "stolen" in annex.to_text()
        statements = annex.to_json()["statements"]
        assert any(s["value"].endswith("mined in RU, not BW") for s in statements)  # type: ignore[union-attr]


def test_shares_sum_to_a_hundred_and_no_csv_cell_is_a_formula() -> None:
    from ledger._words import percents, safe_cell

    assert percents([1, 1, 1]) == ["33.4", "33.3", "33.3"]
    assert percents([2, 1]) == ["66.7", "33.3"] and percents([0, 0]) == ["0.0", "0.0"]
    for parts in ([7, 11, 13], [1, 999_999], [5, 5, 5, 5, 5, 5, 5]):
        assert sum(int(p.replace(".", "")) for p in percents(parts)) == 1000
    assert safe_cell("=HYPERLINK(1)") == "'=HYPERLINK(1)" and safe_cell("@SUM(1)") == "'@SUM(1)"
    assert safe_cell("BW") == "BW"


def test_the_verdict_box_names_the_checks_a_bundle_cannot_make(demo: Path) -> None:
    data, trust = demo_bundle(demo, RINGED)
    html = report_html(dossier_of(check_bundle(data, trust), data))
    box = html[html.index('id="verdict"'):html.index("</section>")]
    assert "none failed), but for" in box and "this bundle cannot make" in box
