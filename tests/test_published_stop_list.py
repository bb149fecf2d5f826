"""Reading the published stop list through the warehouse (what ``smsp demo`` and a data team's
own code use instead of SQL of their own)."""

from __future__ import annotations

from datetime import UTC, datetime

from smsp_connector.operations.extract import extract_stop_list
from smsp_connector.warehouse import Warehouse, published_stop_list


def test_the_published_list_reads_back_in_stop_id_order_with_utc_times(client, emulator, tmp_path):
    warehouse = Warehouse.at(tmp_path / "w.duckdb")
    assert published_stop_list(warehouse).empty, "nothing published yet"
    for number in ("+33622222222", "+33611111111", "+33633333333"):
        client.add_stop(number)

    extract_stop_list(client, warehouse, run_id="r1", max_shrink_share=0.2)
    listed = published_stop_list(warehouse)

    assert list(listed.columns) == ["stop_id", "phone_number", "created_at"]
    assert list(listed.phone_number) == ["+33622222222", "+33611111111", "+33633333333"]
    assert listed.stop_id.is_monotonic_increasing
    assert str(listed.created_at.dt.tz) == "UTC"
    assert abs(listed.created_at.max() - datetime.now(UTC)).total_seconds() < 600
    assert list(published_stop_list(warehouse, limit=2).phone_number) == list(
        listed.phone_number[:2]
    )
