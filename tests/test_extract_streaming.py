"""The extract's streamed path: the list's body on disk, its envelope blanked, DuckDB reading
the array, the clock-change rules applied in SQL, validation in bounded chunks."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest.mock import patch

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsp_connector.client import RetryPolicy, SmspClient
from smsp_connector.client.list_body import EDGE_BYTES, isolate_data_array
from smsp_connector.client.models import PROVIDER_TZ
from smsp_connector.emulator.faults import FaultSettings
from smsp_connector.operations.extract import (
    extract_stop_list,
    provider_hours,
    validate_staged,
)
from smsp_connector.warehouse import Warehouse, staging, stop_list

from .conftest import API_KEY
from .proxy_helpers import SHUTDOWN_POLL_SECONDS

pytestmark = pytest.mark.heavy

PATIENT = RetryPolicy(max_attempts=30, backoff_initial=0.01, backoff_max=0.05, max_elapsed=60)
_ENTRY = {"id": 1, "phoneNumber": "+33611111111", "createdAt": "2025-07-14 09:30:00"}

# -- the envelope around the data array ---------------------------------------------------------

TEXT = st.text(alphabet=st.sampled_from('ab]}[{",:\\ é\n'), max_size=12)
VALUES = st.one_of(st.none(), st.booleans(), st.integers(), TEXT, st.lists(TEXT, max_size=3))
ENTRIES = st.lists(
    st.fixed_dictionaries({"id": st.integers(1, 10**9), "phoneNumber": TEXT, "createdAt": TEXT}),
    max_size=5,
)


@settings(max_examples=300, deadline=None)
@given(
    before=st.dictionaries(TEXT.filter(lambda k: k != "data"), VALUES, max_size=3),
    after=st.dictionaries(TEXT.filter(lambda k: k != "data"), VALUES, max_size=3),
    data=ENTRIES,
    indent=st.sampled_from([None, 0, 2]),
    ascii_only=st.booleans(),
)
def test_the_file_becomes_the_data_array_and_the_envelope_is_read(
    tmp_path_factory, before, after, data, indent, ascii_only
):
    after = {key: value for key, value in after.items() if key not in before}
    body = (
        "{"
        + ", ".join(
            [
                *(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in before.items()),
                f'"data": {json.dumps(data, indent=indent, ensure_ascii=ascii_only)}',
                *(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in after.items()),
            ]
        )
        + "}\n"
    )
    path = tmp_path_factory.mktemp("body") / "list.json"
    path.write_bytes(body.encode())

    fields = isolate_data_array(path)

    assert fields == {**before, **after}
    assert json.loads(path.read_bytes()) == data
    assert path.stat().st_size == len(body.encode()), "blanked in place, no copy"


@pytest.mark.parametrize(
    "body",
    [
        b'{"success": true, "data": {"0": {"id": 1}}}',  # a PHP array with gaps
        b'{"success": true, "data": null}',
        b'{"success": false, "code": 10, "message": "Invalid API key"}',
        b'[{"id": 1}]',
        b'{"success": true, "data": [{"id": 1}, ',  # cut short
        b'{"success": true, "data": [], "success": false}',  # which one?
        b"<html>502</html>",
        b"",
        b'{"message": "' + b"x" * EDGE_BYTES + b'", "data": []}',
    ],
    ids=["object", "null", "error", "bare-array", "truncated", "twice", "html", "empty", "long"],
)
def test_any_other_body_is_left_untouched_for_the_whole_reading(tmp_path, body):
    path = tmp_path / "list.json"
    path.write_bytes(body)

    assert isolate_data_array(path) is None
    assert path.read_bytes() == body


# -- through the emulator -----------------------------------------------------------------------


@pytest.fixture
def client(emulator):
    with SmspClient(API_KEY, base_url=emulator.base_url) as client:
        yield client


def _clock_change_times() -> list[str]:
    """Every 10 minutes over the four clock changes of 2025 and 2026, and one ordinary day."""
    days = ["2025-03-30", "2025-10-26", "2026-03-29", "2026-10-25", "2026-07-14"]
    times = []
    for day in days:
        start = datetime.fromisoformat(day) - timedelta(hours=1)
        times += [(start + timedelta(minutes=10 * i)).isoformat(" ") for i in range(30)]
    return times


def test_paris_times_follow_the_same_rules_as_pandas_around_every_clock_change(
    emulator, client, tmp_path
):
    times = _clock_change_times()
    emulator.state.seed_entries((f"+336{i:08d}", when) for i, when in enumerate(times))

    extraction = extract_stop_list(
        client, Warehouse.at(tmp_path / "w.duckdb"), run_id="clocks", max_shrink_share=0.2
    )

    assert extraction.published
    with Warehouse.at(tmp_path / "w.duckdb").connect() as (conn, t):
        stored = conn.execute(
            f"SELECT created_at FROM {t.stop_list} ORDER BY phone_number"
        ).fetchall()
    local = pd.Series(pd.to_datetime(times))
    expected = local.dt.tz_localize(
        PROVIDER_TZ.key, ambiguous=np.ones(len(local), dtype=bool), nonexistent="shift_forward"
    ).dt.tz_convert("UTC")
    assert [row[0].astimezone(UTC) for row in stored] == [when.to_pydatetime() for when in expected]


def test_failing_rows_are_found_in_every_chunk_with_their_position_and_entry(
    emulator, client, tmp_path
):
    numbers = ["+33611111111", "0612", "+33622222222", "+33633333333", "bad", "+33644444444"]
    emulator.state.seed_entries((number, "2025-07-14 09:30:00") for number in numbers)
    emulator.state.seed_entries([("+33655555555", "not a date")])
    listed = client.download_stop_list(tmp_path / "list.json")

    with staging(Warehouse.at(tmp_path / "w.duckdb")) as stage:
        stage.load(listed.path)
        stage.stage(provider_hours(stage.local_hours()), datetime.now(UTC))
        whole = validate_staged(stage)
        chunked = validate_staged(stage, chunk_rows=2)

    cases = chunked.failure_cases
    assert list(cases["row"]) == [1, 4, 6]
    assert list(cases["column"]) == ["phone_number", "phone_number", "created_at"]
    assert "phoneNumber='0612'" in cases["provider_entry"].iloc[0]
    assert "createdAt='not a date'" in cases["provider_entry"].iloc[2]
    pd.testing.assert_frame_equal(
        whole.failure_cases.reset_index(drop=True), cases.reset_index(drop=True)
    )


def test_the_download_survives_5xx_and_dropped_connections(emulator, tmp_path):
    emulator.state.seed_entries((f"+336{i:08d}", "2025-07-14 09:30:00") for i in range(500))
    emulator.faults = FaultSettings(fail_rate=0.3, reset_rate=0.3)
    try:
        with SmspClient(API_KEY, base_url=emulator.base_url, retry=PATIENT) as client:
            listed = client.download_stop_list(tmp_path / "list.json")
    finally:
        emulator.faults = FaultSettings()

    assert listed.nb_data == 500
    assert len(json.loads(listed.path.read_bytes())) == 500


class _CutOnce(BaseHTTPRequestHandler):
    """Answers the list; the first time, the connection drops halfway through the body."""

    body = json.dumps(
        {"success": True, "code": 200, "nbData": 3, "data": [_ENTRY, _ENTRY, _ENTRY]}
    ).encode()
    served = 0

    def do_GET(self) -> None:
        type(self).served += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        if type(self).served == 1:
            self.wfile.write(self.body[: len(self.body) // 2])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(self.body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_body_cut_short_is_downloaded_again_from_the_start(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CutOnce)
    threading.Thread(
        target=server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), daemon=True
    ).start()
    try:
        base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        with SmspClient(API_KEY, base_url=base_url, retry=PATIENT) as client:
            listed = client.download_stop_list(tmp_path / "list.json")
    finally:
        server.shutdown()
        server.server_close()

    assert _CutOnce.served == 2
    assert listed.answer.attempts == 2
    assert json.loads(listed.path.read_bytes()) == [_ENTRY, _ENTRY, _ENTRY]


@pytest.mark.parametrize("odd", ["+33622222222\n", "+33\u0663222222222", "+33622222222\r"])
def test_a_number_with_a_line_break_or_another_scripts_digits_fails_the_schema(
    emulator, client, tmp_path, odd
):
    """Python's ``$`` takes a final line break and ``\\d`` any script's digits, DuckDB's RE2
    neither: such a number would have been published as it came, and then matched no number
    written in plain digits (the push's diff, the audience check). It is a failing row."""
    numbers = ["+33611111111", odd, "+33633333333"]
    emulator.state.seed_entries((number, "2025-07-14 09:30:00") for number in numbers)
    listed = client.download_stop_list(tmp_path / "list.json")
    with staging(Warehouse.at(tmp_path / "w.duckdb")) as stage:
        stage.load(listed.path)
        stage.stage(provider_hours(stage.local_hours()), datetime.now(UTC))
        cases = validate_staged(stage).failure_cases
    assert list(cases["row"]) == [1]
    assert list(cases["column"]) == ["phone_number"]


# -- SQL passes the plainly valid rows, pandera decides the rest ---------------------------------

PHONE_VALUES = st.one_of(
    st.sampled_from(["+33612345678", "+4915112345678"]),
    st.sampled_from(["+33612345678", "+4915112345678"]),
    st.sampled_from(
        ["+33612345678", "+33612345678\n", "+\u0663\u0663612345678", "0612", "", "+0612345678"]
    ),
    st.text(alphabet="+0123456789\u0663\n x", max_size=17),
    st.none(),
)
ID_VALUES = st.one_of(st.integers(-2, 4), st.none(), st.just("7"), st.just(2.5))
TIME_VALUES = st.one_of(
    st.just("2025-07-14 09:30:00"),
    st.sampled_from(["2025-03-30 02:30:00", "0000-00-00 00:00:00", "x", None]),
)


@settings(max_examples=40, deadline=None)
@given(
    entries=st.lists(
        st.fixed_dictionaries(
            {"id": ID_VALUES, "phoneNumber": PHONE_VALUES, "createdAt": TIME_VALUES}
        ),
        min_size=2,
        max_size=12,
    )
)
def test_sql_prefiltering_finds_exactly_what_pandera_over_every_row_finds(
    tmp_path_factory, entries
):
    folder = tmp_path_factory.mktemp("prefilter")
    path = folder / "list.json"
    path.write_text(json.dumps(entries))

    def validated(everything: bool) -> pd.DataFrame:
        # "? IS NULL" is false for the pattern: every row goes to pandera.
        plainly = "(? IS NULL)" if everything else stop_list.PLAINLY_VALID
        with (
            patch.object(stop_list, "PLAINLY_VALID", plainly),
            staging(Warehouse.at(folder / f"{everything}.duckdb")) as stage,
        ):
            stage.load(path)
            stage.stage(provider_hours(stage.local_hours()), datetime(2026, 1, 1, tzinfo=UTC))
            return validate_staged(stage, chunk_rows=3).failure_cases.reset_index(drop=True)

    pd.testing.assert_frame_equal(validated(everything=False), validated(everything=True))


# -- the fields read as text give what each entry read as JSON gives ----------------------------

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["19", " 7 ", "20.0", "+33612345678", "2025-07-14 09:30:00", "é", "", '"q"']),
    st.text(max_size=6),
)
JSON_VALUES = st.one_of(JSON_SCALARS, st.lists(JSON_SCALARS, max_size=2))
FIELD = st.sampled_from(["id", "phoneNumber", "createdAt", "other"])


@settings(max_examples=60, deadline=None)
@given(
    entries=st.lists(
        st.one_of(st.dictionaries(FIELD, JSON_VALUES, max_size=4), JSON_SCALARS),
        min_size=1,
        max_size=6,
    )
)
def test_the_fields_read_as_text_are_what_each_entry_read_as_json_gives(tmp_path_factory, entries):
    folder = tmp_path_factory.mktemp("fields")
    path = folder / "list.json"
    path.write_text(json.dumps(entries))
    staged: list[tuple[object, pd.DataFrame | None]] = []
    for keep_entries in (False, True):
        with staging(Warehouse.at(folder / f"{keep_entries}.duckdb")) as stage:
            try:
                loaded = stage.load(path, keep_entries=keep_entries)
            except duckdb.Error as refused:
                staged.append((type(refused), None))
                continue
            if loaded.malformed is not None:  # DuckDB cannot read the JSON (a lone surrogate…)
                staged.append((loaded, None))
                continue
            stage.stage(provider_hours(stage.local_hours()), datetime(2026, 1, 1, tzinfo=UTC))
            staged.append((loaded, stage.preview(100)))

    (fields, by_fields), (whole, by_entry) = staged
    assert fields == whole
    if by_fields is not None and by_entry is not None:
        pd.testing.assert_frame_equal(by_fields, by_entry)


def test_duckdb_never_draws_its_progress_bar_into_a_commands_output(tmp_path):
    """DuckDB draws a progress bar on stdout for a query past 2 s (loading a 5,000,000-entry
    list for a push does): amid `smsp push --format json` it breaks the JSON. In a process of
    its own, as a command runs (under pytest DuckDB leaves the bar off); a test cannot shorten
    the 2 s (setting ``progress_bar_time`` turns the bar back on), so it reads the setting."""
    code = (
        "import sys; from smsp_connector.warehouse import Warehouse\n"
        "with Warehouse.at(sys.argv[1]).connect() as (conn, _):\n"
        "    print(conn.execute(\"SELECT current_setting('enable_progress_bar')\").fetchall())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "w.duckdb")],
        capture_output=True,
        text=True,
        check=True,
    )

    assert done.stdout.strip() == "[(False,)]"
