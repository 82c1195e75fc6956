"""The PostgreSQL store (issue 12, docs/adr/0023-postgresql-store.md): the same records give the same state, root
and checkpoint as in a ledger file; a retried batch is stored once; many writer processes append at once with no
gap and no lost record."""

from __future__ import annotations

import itertools
import json
import marshal
import multiprocessing
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger import Ledger, Mined, Output, Record, Trust, check_ledger, copy_ledger, export_bundles, keyfile
from ledger.errors import InputError, RuleError, StoneTrailError, StorageError
from ledger.events import Transferred
from ledger.reader import checkpoint_file
from ledger.storage import scan
from stonetrail_cli.main import main
from world import ORIGIN, TRUST, World

pytestmark = pytest.mark.postgres


def _demo_records(demo: Path) -> tuple[list[Record], frozenset[bytes], object]:
    trust = Trust.parse((demo / "trust.keys").read_text())
    with Ledger.open(demo / "demo.ledger", trust.authority_keys) as ledger:
        records = [ledger.record(i) for i in range(ledger.size)]
    return records, trust.authority_keys, keyfile.load_private_key(demo / "keys" / "operator.pem")


def test_the_demo_in_postgres_signs_the_checkpoint_the_file_signs(demo: Path, postgres_url: str) -> None:
    records, keys, operator = _demo_records(demo)
    with Ledger.create(postgres_url, scan(demo / "demo.ledger").origin, keys) as ledger:
        for start in range(0, len(records), 97):
            ledger.append_batch(records[start:start + 97])
        assert ledger.size == len(records)
        signed = ledger.checkpoint(operator)  # type: ignore[arg-type]
    assert signed == checkpoint_file(demo / "demo.ledger", operator)  # type: ignore[arg-type]
    with Ledger.open(postgres_url, keys) as again:  # reopened: the same view from the tables
        assert again.size == len(records) and again.root_hash() == ledger.root_hash()
        assert again.record(len(records) - 1) == records[-1]
        assert again.checkpoint(operator) == signed  # type: ignore[arg-type]


def _enrolled() -> tuple[World, list[Record]]:
    """A world whose producer-a and trader-b are enrolled, and their enrolment records."""
    world, records = World(), []
    for party, roles in (("producer-a", ("producer",)), ("trader-b", ("trader",))):
        records.append(world.enrol(party, roles))
        assert world.add(records[-1]) == []
    return world, records


def test_a_retried_batch_is_stored_once_and_a_bad_one_not_at_all(postgres_url: str) -> None:
    world, enrolments = _enrolled()
    with Ledger.create(postgres_url, ORIGIN, TRUST.authority_keys) as ledger:
        assert ledger.append_batch(enrolments) == 0
        assert ledger.append_batch(enrolments) == 0  # an acknowledgement lost, the batch sent again
        assert ledger.size == 2
        mined = world.mine("S1")
        with pytest.raises(RuleError) as refused:
            ledger.append_batch([mined, mined])  # the second is a duplicate: the whole batch is refused
        assert refused.value.code in ("record.duplicate", "item.duplicate_id")
        assert ledger.size == 2
        assert ledger.append(mined) == 2
    with pytest.raises(StorageError) as exists:
        Ledger.create(postgres_url, ORIGIN, TRUST.authority_keys)
    assert exists.value.code == "store.exists"


def _write(url: str, writer: int, stones: int) -> None:
    """One writer process: ``stones`` new stones, each mined then sold on (two records of its chain)."""
    world = World()
    with Ledger.open(url, TRUST.authority_keys) as ledger:
        for n in range(stones):
            item = f"W{writer}-{n:04d}"
            mined = world.make(Mined(mine="Jwaneng", country="BW"), "producer-a", place="BW",
                               outputs=[Output(id=item, type="stone", mass_mct=1_000)])
            ledger.append(mined)
            sold = world.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=[item], place="BW",
                              prev={item: mined.record_hash})
            ledger.append(sold)


def test_writer_processes_appending_at_once_lose_nothing_and_leave_no_gap(postgres_url: str,
                                                                          tmp_path: Path) -> None:
    _, enrolments = _enrolled()
    with Ledger.create(postgres_url, ORIGIN, TRUST.authority_keys) as ledger:
        ledger.append_batch(enrolments)
    writers, stones = 4, 15
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_write, args=(postgres_url, w, stones)) for w in range(writers)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(timeout=300)
    assert [p.exitcode for p in processes] == [0] * writers
    copy = tmp_path / "copy.ledger"
    with Ledger.open(postgres_url, TRUST.authority_keys) as ledger:
        assert ledger.size == 2 + writers * stones * 2
        root = ledger.root_hash()
        for writer in range(writers):  # each stone's chain whole: mined, then sold, nothing lost between
            for n in range(stones):
                item = ledger.item(f"W{writer}-{n:04d}")
                assert (item.holder, len(item.history)) == ("trader-b", 2)
    assert copy_ledger(postgres_url, copy, TRUST.authority_keys) == 2 + writers * stones * 2  # checked again
    report = check_ledger(copy, TRUST)
    assert report.ok and not report.findings and report.root_hash == root


def test_copy_moves_a_ledger_into_a_database_and_back_with_the_same_checkpoint_and_bundles(
        demo: Path, postgres_url: str, tmp_path: Path) -> None:
    _, _, operator = _demo_records(demo)
    trust, back = str(demo / "trust.keys"), tmp_path / "back.ledger"
    runner = CliRunner()
    there = runner.invoke(main, ["copy", str(demo / "demo.ledger"), postgres_url, "--trust", trust, "--json"])
    assert there.exit_code == 0, there.output
    assert json.loads(there.output)["records"] == len(scan(demo / "demo.ledger").frames)
    again = runner.invoke(main, ["copy", str(demo / "demo.ledger"), postgres_url, "--trust", trust])
    assert again.exit_code == 3 and "store.exists" in again.output  # a database holding a ledger is never overwritten
    home = runner.invoke(main, ["copy", postgres_url, str(back), "--trust", trust])
    assert home.exit_code == 0 and "***" not in home.output, home.output
    assert checkpoint_file(back, operator) == checkpoint_file(demo / "demo.ledger", operator)  # type: ignore[arg-type]
    stones = sorted(p.stem for p in (demo / "proofs").glob("*.stproof"))[:5]
    note = (demo / "checkpoint.txt").read_text()
    trusted = Trust.parse((demo / "trust.keys").read_text())
    assert export_bundles(back, stones, note, trust=trusted) == export_bundles(demo / "demo.ledger", stones, note,
                                                                               trust=trusted)


def test_the_commands_read_a_database_ledger_as_they_read_its_file(demo: Path, postgres_url: str,
                                                                   tmp_path: Path) -> None:
    trust, key, ledger = str(demo / "trust.keys"), str(demo / "keys" / "operator.pem"), str(demo / "demo.ledger")
    runner = CliRunner()
    assert runner.invoke(main, ["copy", ledger, postgres_url, "--trust", trust]).exit_code == 0
    stone = sorted(p.stem for p in (demo / "proofs").glob("*.stproof"))[0]
    note = str(demo / "checkpoint.txt")
    for command in (["verify", "{L}", "--trust", trust, "--json"], ["show", "{L}", stone, "--json"],
                    ["show", "{L}", stone, "--trust", trust, "--json"], ["items", "{L}", "--json"],
                    ["checkpoint", "{L}", "--key", key, "-o", "-"],
                    ["evidence", "fork", "{L}", "--checkpoint", str(demo / "checkpoint.txt"), "-o", "-"]):
        outputs = []
        for location in (ledger, postgres_url):
            result = runner.invoke(main, [location if a == "{L}" else a for a in command])
            outputs.append((result.exit_code, result.output))
        if command[0] == "verify":
            outputs = [(code, {k: v for k, v in json.loads(out).items() if k != "seconds"}) for code, out in outputs]
        assert outputs[0] == outputs[1], command
        assert outputs[0][0] == (1 if command[0] == "evidence" else 0), outputs[0]  # evidence: exit 1, no fork
    bundles = []
    for n, location in enumerate((ledger, postgres_url)):
        out = tmp_path / f"{n}.stproof"
        result = runner.invoke(main, ["proof", "export", location, stone, "--checkpoint", note, "-o", str(out)])
        assert result.exit_code == 0, result.output
        bundles.append(out.read_bytes())
    assert bundles[0] == bundles[1]
    unnamed = runner.invoke(main, ["proof", "export", postgres_url, stone, "-o", str(tmp_path / "x.stproof")])
    assert unnamed.exit_code == 2 and "--checkpoint" in unnamed.output


def test_the_librarys_whole_ledger_readers_take_a_url_as_they_take_a_file(demo: Path, postgres_url: str) -> None:
    """An audit, a replay, a consistency proof and fork evidence of a database ledger are those of its file."""
    from ledger import replay_ledger
    from ledger.monitor import consistency_proof_for, fork_evidence

    trust = Trust.parse((demo / "trust.keys").read_text())
    records, keys, operator = _demo_records(demo)
    origin = scan(demo / "demo.ledger").origin
    with Ledger.create(postgres_url, origin, keys) as ledger:
        ledger.append_batch(records[:300])
        old = ledger.checkpoint(operator)  # type: ignore[arg-type]
        ledger.append_batch(records[300:])
    note = (demo / "checkpoint.txt").read_text()
    for call in (lambda at: check_ledger(at, trust, checkpoint=note).to_json(),
                 lambda at: replay_ledger(at, trust).findings,
                 lambda at: consistency_proof_for(at, old, note, trust=trust),
                 lambda at: fork_evidence(at, note)):
        assert call(postgres_url) == call(demo / "demo.ledger")
    report = check_ledger(postgres_url, trust, checkpoint=note)
    assert report.record_count == len(records) and not report.findings and report.checkpoint is not None


def _tamper(url: str, sql: str) -> None:
    import psycopg
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def test_a_log_row_deleted_or_changed_behind_the_librarys_back_is_never_signed_copied_or_passed(
        demo: Path, postgres_url: str, tmp_path: Path) -> None:
    trust, key = str(demo / "trust.keys"), str(demo / "keys" / "operator.pem")
    records, keys, _ = _demo_records(demo)
    with Ledger.create(postgres_url, scan(demo / "demo.ledger").origin, keys) as ledger:
        ledger.append_batch(records)
    runner = CliRunner()
    _tamper(postgres_url, "UPDATE log SET payload = overlay(payload placing '\\x00'::bytea from 40 for 1) "
                          "WHERE position = 100")  # a record in the middle changed
    for command in (["verify", postgres_url, "--trust", trust], ["copy", postgres_url, str(tmp_path / "c.ledger"),
                                                                 "--trust", trust]):
        result = runner.invoke(main, command)
        assert result.exit_code == 3 and "index.damaged" in result.output, (command, result.output)
    assert not (tmp_path / "c.ledger").exists() and not list(tmp_path.glob("*.partial"))  # no shorter copy left
    _tamper(postgres_url, f"DELETE FROM log WHERE position = {len(records) - 1}")  # the last record gone
    for command in (["checkpoint", postgres_url, "--key", key, "-o", "-"],
                    ["show", postgres_url, "R-00001-A"]):
        result = runner.invoke(main, command)
        assert result.exit_code == 3 and "index.damaged" in result.output, (command, result.output)
    with pytest.raises(StorageError) as refused:
        Ledger.open(postgres_url, keys)
    assert refused.value.code == "index.damaged"


def test_a_database_of_the_marshal_schema_is_refused_saying_so(postgres_url: str) -> None:
    """Schema 8 and before encoded meta values with marshal, which this version never decodes (a 5-byte value
    can claim gigabytes): such a database is another schema, named, not damage nor a traceback."""
    from ledger.index.maps import row_check

    with Ledger.create(postgres_url, ORIGIN, TRUST.authority_keys):
        pass
    for name, old in (("schema", marshal.dumps(8, 2)), ("origin", marshal.dumps(ORIGIN, 2))):  # as schema 8 wrote
        _tamper(postgres_url, f"UPDATE meta SET v = '\\x{old.hex()}'::bytea, "
                              f"c = {row_check('meta', name.encode(), old)} WHERE k = '{name}'")
    with pytest.raises(InputError) as refused:
        Ledger.open(postgres_url, TRUST.authority_keys)
    assert refused.value.code == "store.not_a_ledger" and "schema 8 or older" in str(refused.value)


def test_a_batch_holding_some_stored_records_is_refused_as_the_file_store_refuses_it(postgres_url: str) -> None:
    world, enrolments = _enrolled()
    with Ledger.create(postgres_url, ORIGIN, TRUST.authority_keys) as ledger:
        ledger.append_batch(enrolments)
        mined = world.mine("S1")
        with pytest.raises(RuleError) as refused:
            ledger.append_batch([mined, enrolments[1]])  # a new record, then one stored at 1
        assert ledger.size == 2  # refused whole, by the rules (as in a file: the enrolment breaks its link)
        assert refused.value.code in ("record.duplicate", "registry.link_mismatch"), refused.value.code
        assert ledger.append_batch(enrolments) == 0  # the whole batch again, in order: its position
        with pytest.raises(RuleError):
            ledger.append_batch(enrolments[::-1])  # all stored, but not as one batch in this order


def test_database_misuse_gets_one_clear_line(postgres_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    empty = runner.invoke(main, ["show", postgres_url, "S1"])  # a database with no ledger in it
    assert empty.exit_code == 2 and "store.not_a_ledger" in empty.output, empty.output
    with pytest.raises(InputError) as bad:  # as for a ledger file
        Ledger.create(postgres_url, "", TRUST.authority_keys)
    assert bad.value.code == "store.bad_origin"
    secret = f"{postgres_url}?password=Secret99"
    with Ledger.create(secret, ORIGIN, TRUST.authority_keys):
        pass
    trust = tmp_path / "trust.keys"
    trust.write_text(TRUST.format(), encoding="utf-8")
    for args in (["show", secret, "S1", "--json"], ["show", secret, "S1", "--trust", str(trust), "--json"]):
        listed = runner.invoke(main, args)  # from its tables, then replayed: its password in neither message
        assert "Secret99" not in listed.output and "password=***" in listed.output, listed.output
    for url in (postgres_url.replace("@127.0.0.1:", "@127.0.0.1:abc"), f"{postgres_url}?nosuchoption=1",
                postgres_url.upper()):
        malformed = runner.invoke(main, ["show", url, "S1"])  # malformed input, not an unreachable server
        assert malformed.exit_code == 2 and "input.url" in malformed.output, malformed.output
    for command in ("index", "repair"):  # about a ledger file: a database is refused, saying why
        refused = runner.invoke(main, [command, postgres_url, *(["--trust", __file__] if command == "index" else [])])
        assert refused.exit_code == 2 and "works on a ledger file" in refused.output, refused.output


def test_a_database_holding_other_tables_is_refused_and_a_failed_copy_leaves_it_as_it_was(
        demo: Path, postgres_url: str, tmp_path: Path) -> None:
    """One database per ledger: ``init`` and ``copy`` refuse a database with tables of its own (same names or
    not), and a copy that fails part-way drops the tables it made."""
    import psycopg
    runner, trust = CliRunner(), str(demo / "trust.keys")
    _tamper(postgres_url, "CREATE TABLE log (a integer)")
    for command in (["init", postgres_url, "--origin", ORIGIN, "--trust", trust],
                    ["copy", str(demo / "demo.ledger"), postgres_url, "--trust", trust]):
        result = runner.invoke(main, command)
        assert result.exit_code == 3 and "store.exists" in result.output and "tables already" in result.output, \
            result.output
    _tamper(postgres_url, "DROP TABLE log")
    with pytest.raises(RuleError) as refused:  # another authority's keys: record 0 refused, after the tables were made
        copy_ledger(demo / "demo.ledger", postgres_url, TRUST.authority_keys)
    assert refused.value.code == "registry.not_authority" and "empty again" in str(refused.value)
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").fetchone() == (0,)
    assert runner.invoke(main, ["copy", str(demo / "demo.ledger"), postgres_url, "--trust", trust]).exit_code == 0


def test_an_interrupted_copy_into_a_database_leaves_it_as_it_was(
        demo: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new user's review: Ctrl-C during a copy into PostgreSQL left the part copied, which verified valid, and
    a second copy was refused (store.exists). All or nothing, as for a file."""
    import psycopg

    import ledger.copy

    def interrupt(done: int, total: int) -> None:
        if done >= 200:
            raise KeyboardInterrupt

    keys = _demo_records(demo)[1]
    monkeypatch.setattr(ledger.copy, "BATCH", 100)
    with pytest.raises(KeyboardInterrupt):
        copy_ledger(demo / "demo.ledger", postgres_url, keys, progress=interrupt)
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()").fetchone() == (0,)
    assert copy_ledger(demo / "demo.ledger", postgres_url, keys) == 704


def test_an_item_created_after_the_checkpoint_is_a_stale_checkpoint_not_an_unknown_item(
        demo: Path, postgres_url: str, tmp_path: Path) -> None:
    records, keys, operator = _demo_records(demo)
    with Ledger.create(postgres_url, scan(demo / "demo.ledger").origin, keys) as ledger:
        ledger.append_batch(records[:300])
        note = ledger.checkpoint(operator)  # type: ignore[arg-type]
        ledger.append_batch(records[300:])
        born = next(o.id for r in records[300:] for o in r.body.outputs if o.id not in
                    {p.id for q in records[:300] for p in q.body.outputs})
    (tmp_path / "cp.txt").write_text(note)
    result = CliRunner().invoke(main, ["proof", "export", postgres_url, born, "--checkpoint", str(tmp_path / "cp.txt"),
                                       "-o", str(tmp_path / "b.stproof")])
    assert result.exit_code == 1 and "checkpoint.stale" in result.output and "predates" in result.output, \
        result.output
    assert "stonetrail checkpoint" in result.output and not (tmp_path / "b.stproof").exists()


def test_a_checkpoint_signed_elsewhere_exports_as_from_the_file(demo: Path, postgres_url: str,
                                                                tmp_path: Path) -> None:
    """The database keeps trees only at the sizes it signed: a checkpoint signed on a file copy at another size
    is answered from a checked dump, as the log-only path answers it (no KeyError, no traceback)."""
    records, keys, operator = _demo_records(demo)
    origin = scan(demo / "demo.ledger").origin
    early = tmp_path / "early.ledger"
    with Ledger.create(early, origin, keys) as file:
        file.append_batch(records[:600])
    note = checkpoint_file(early, operator)  # type: ignore[arg-type]
    with Ledger.create(postgres_url, origin, keys) as ledger:
        ledger.append_batch(records[:650])
        ledger.checkpoint(operator)  # type: ignore[arg-type]  # trees kept at 650 and 704, not at 600
        ledger.append_batch(records[650:])
        ledger.checkpoint(operator)  # type: ignore[arg-type]
    trust = Trust.parse((demo / "trust.keys").read_text())
    stones = sorted(p.stem for p in (demo / "proofs").glob("*.stproof"))
    outcomes: list[object] = []
    for location, stone in itertools.product((postgres_url, demo / "demo.ledger"), stones[:6]):
        try:
            outcomes.append(export_bundles(location, [stone], note, trust=trust))
        except StoneTrailError as exc:  # e.g. a stone with records after 600: stale, from both alike
            outcomes.append((type(exc).__name__, exc.code, str(exc)))
    assert outcomes[:6] == outcomes[6:] and any(isinstance(o, dict) for o in outcomes)


def test_an_export_reads_a_provenance_an_item_at_a_time_not_a_record_at_a_time(
        demo: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A round trip per record and per tile made one-stone export cost 57 ms at 10^6 records (issue 12: <= 50):
    each item's records come in one query, with the tiles their proofs read, and the bundle is the file's."""
    from ledger.pg import db

    copy_ledger(demo / "demo.ledger", postgres_url, _demo_records(demo)[1])
    note = (demo / "checkpoint.txt").read_text()
    stone = max((p.stem for p in (demo / "proofs").glob("*.stproof")),
                key=lambda s: len(export_bundles(demo / "demo.ledger", [s], note)[s]))
    sent: list[str] = []
    execute = db.PgDb.execute
    monkeypatch.setattr(db.PgDb, "execute", lambda self, sql, *a: sent.append(sql) or execute(self, sql, *a))
    bundle = export_bundles(postgres_url, [stone], note)[stone]
    assert bundle == export_bundles(demo / "demo.ledger", [stone], note)[stone]
    singles = [sql for sql in sent if "FROM log WHERE position = ?" in sql or "FROM tiles WHERE id = ?" in sql]
    assert sent and not singles, singles
