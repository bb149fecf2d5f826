"""The one owner of DuckDB: every table and view, its DDL, and every SQL statement.

Callers hand a :class:`Warehouse` (how to connect, which schema) to the functions here; none of
them writes SQL.
"""

from smsp_connector.warehouse.audit import (
    UNSENT_OUTCOMES,
    AuditEntry,
    AuditWriter,
    Outcome,
    audit_entries,
    outcome_counts,
    outcome_rows,
    record_input_rejections,
    unsent_rows,
)
from smsp_connector.warehouse.exports import ExportForm, ExportResult, export_suppression_list
from smsp_connector.warehouse.history import HistoryUpdate, recent_changes, update_history
from smsp_connector.warehouse.schemas import StopListSchema
from smsp_connector.warehouse.sources import (
    FINAL_OUTCOMES,
    SourceRows,
    advance_cursor,
    pushed_cursor,
    query_columns,
    read_source_rows,
    record_source_reads,
    refused_numbers,
    table_query,
)
from smsp_connector.warehouse.stop_list import (
    Duplicates,
    RawLoad,
    SnapshotSummary,
    StopListStage,
    publish_stop_list,
    published_stop_list,
    reject_stop_list,
    staging,
)
from smsp_connector.warehouse.tables import (
    DEFAULT_LOCK_WAIT_SECONDS,
    DEFAULT_SCHEMA,
    TABLE_NAMES,
    Tables,
    Warehouse,
    WarehouseBusyError,
    is_local_database,
    make_database_folder,
    table_name,
)
from smsp_connector.warehouse.versions import WarehouseVersionError, refuse_newer_file

__all__ = [
    "DEFAULT_LOCK_WAIT_SECONDS",
    "DEFAULT_SCHEMA",
    "FINAL_OUTCOMES",
    "TABLE_NAMES",
    "UNSENT_OUTCOMES",
    "AuditEntry",
    "AuditWriter",
    "Duplicates",
    "ExportForm",
    "ExportResult",
    "HistoryUpdate",
    "Outcome",
    "RawLoad",
    "SnapshotSummary",
    "SourceRows",
    "StopListSchema",
    "StopListStage",
    "Tables",
    "Warehouse",
    "WarehouseBusyError",
    "WarehouseVersionError",
    "advance_cursor",
    "audit_entries",
    "export_suppression_list",
    "is_local_database",
    "make_database_folder",
    "outcome_counts",
    "outcome_rows",
    "publish_stop_list",
    "published_stop_list",
    "pushed_cursor",
    "query_columns",
    "read_source_rows",
    "recent_changes",
    "record_input_rejections",
    "record_source_reads",
    "refuse_newer_file",
    "refused_numbers",
    "reject_stop_list",
    "staging",
    "table_name",
    "table_query",
    "unsent_rows",
    "update_history",
]
