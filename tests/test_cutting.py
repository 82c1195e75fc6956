"""Where goods were cut (ledger.cutting): the country of origin of each line of an item, for the customs annex.
Found by an adversarial review: the annex took the place of the latest split anywhere in the ancestry, so a
re-sorted polished lot got the sorter's country, a mixed lot of parts cut in two countries only one of them, and
a rough piece sorted out of a parcel the sorter's country."""

from __future__ import annotations

from ledger.cutting import Cut, Line, lines_of


def test_a_stone_cut_once_has_its_cutting_country() -> None:
    edges = [(2, "split", "BW", ("LOT",), "ROUGH-1", 0), (5, "split", "IN", ("ROUGH-1",), "STONE", 900)]
    assert lines_of("STONE", edges, {"LOT": "BW"}) == (Line(mining="BW", cut=Cut(position=5, place="IN",
                                                                                   child="STONE")),)
    assert lines_of("ROUGH-1", edges, {"LOT": "BW"})[0].origin == "BW"  # sorted, never cut: its mining country


def test_a_mixed_lot_keeps_each_parts_origin_and_re_sorting_moves_none() -> None:
    roots = {"ROUGH-RU": "RU", "ROUGH-CA": "CA"}
    edges = [(3, "split", "IN", ("ROUGH-RU",), "P-IN", 500), (4, "split", "IL", ("ROUGH-CA",), "P-IL", 400),
             (6, "merged", "BE", ("P-IN", "P-IL"), "PLOT", 0), (7, "split", "BE", ("PLOT",), "PLOT-A", 0),
             (8, "split", "BE", ("PLOT-A",), "RECUT", 10)]  # a later re-cut of polished goods is not the cut
    assert [(line.mining, line.origin) for line in lines_of("PLOT-A", edges, roots)] == [("CA", "IL"), ("RU", "IN")]
    assert [(line.mining, line.origin) for line in lines_of("RECUT", edges, roots)] == [("CA", "IL"), ("RU", "IN")]


def test_rough_sorted_out_of_a_mixed_parcel_is_not_cut_where_it_was_sorted() -> None:
    roots = {"LOT-RU": "RU", "LOT-AO": "AO"}
    edges = [(3, "merged", "AE", ("LOT-RU", "LOT-AO"), "PARCEL", 0), (4, "split", "AE", ("PARCEL",), "PIECE", 0),
             (9, "split", "IN", ("PIECE",), "STONE", 700)]
    assert [(line.mining, line.origin) for line in lines_of("PIECE", edges, roots)] == [("AO", "AO"), ("RU", "RU")]
    assert [(line.mining, line.origin) for line in lines_of("STONE", edges, roots)] == [("AO", "IN"), ("RU", "IN")]


def test_a_deep_chain_costs_no_recursion() -> None:
    edges = [(i + 1, "split", "IN" if i == 0 else "BE", (f"S{i}",), f"S{i + 1}", 1 if i == 0 else 0)
             for i in range(5000)]
    (line,) = lines_of("S5000", edges, {"S0": "BW"})
    assert (line.mining, line.origin) == ("BW", "IN")
