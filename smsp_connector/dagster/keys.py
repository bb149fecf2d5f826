"""The asset keys, op names and job names of one deployment, built once from its settings, so
that no caller rebuilds a key from strings."""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from smsp_connector.client import MutationKind
from smsp_connector.settings import Settings

ACCOUNT_TAG = "smsp/account"
"""The run tag naming the account a run acts for: its jobs' and its automation's runs carry it."""

OPERATIONS = tuple(kind.value for kind in MutationKind)
"""The inbox folders, and the audit log's operations that change the provider's list."""


@dataclass(frozen=True, slots=True)
class SmspKeys:
    prefix: str
    job_prefix: str = ""

    @classmethod
    def of(cls, settings: Settings) -> SmspKeys:
        return cls(settings.key_prefix, settings.job_prefix)

    def key(self, name: str) -> dg.AssetKey:
        return dg.AssetKey([*self.prefix.split("/"), name])

    @property
    def stop_list(self) -> dg.AssetKey:
        return self.key("stop_list")

    @property
    def provider_stop_list(self) -> dg.AssetKey:
        """The list as the provider holds it: the pushes and deletions change it, the stop list
        snapshot reads it."""
        return self.key("provider_stop_list")

    @property
    def history(self) -> dg.AssetKey:
        return self.key("stop_list_history")

    @property
    def ledger(self) -> dg.AssetKey:
        return self.key("opt_out_ledger")

    @property
    def export(self) -> dg.AssetKey:
        return self.key("suppression_export")

    @property
    def export_sha256(self) -> dg.AssetKey:
        return self.key("suppression_export_sha256")

    @property
    def export_hmac(self) -> dg.AssetKey:
        return self.key("suppression_export_hmac_sha256")

    @property
    def additions(self) -> dg.AssetKey:
        return self.key("stop_list_additions")

    @property
    def deletions(self) -> dg.AssetKey:
        return self.key("stop_list_deletions")

    @property
    def cancellations(self) -> dg.AssetKey:
        return self.key("message_cancellations")

    @property
    def lake_upkeep(self) -> dg.AssetKey:
        return self.key("lake_upkeep")

    @property
    def retention_purge(self) -> dg.AssetKey:
        return self.key("retention_purge")

    @property
    def compliance_report(self) -> dg.AssetKey:
        return self.key("compliance_report")

    def inbox(self, operation: str) -> dg.AssetKey:
        return self.key(f"inbox_{operation}_csv")

    def mutation(self, operation: str) -> dg.AssetKey:
        """The outcome asset of ``add``, ``delete`` or ``cancel``."""
        return {
            MutationKind.ADD: self.additions,
            MutationKind.DELETE: self.deletions,
            MutationKind.CANCEL: self.cancellations,
        }[MutationKind(operation)]

    def job(self, name: str) -> str:
        return f"{self.job_prefix}{name}"

    @staticmethod
    def op_name(key: dg.AssetKey) -> str:
        """The op name that run config uses for an asset (``smsp__stop_list_additions``)."""
        return key.to_python_identifier()

    def op_config(self, key: dg.AssetKey, **config: object) -> dict[str, object]:
        """Run config giving ``config`` to the asset ``key``."""
        return {"ops": {self.op_name(key): {"config": config}}}


def asset_attributes(settings: Settings, kinds: set[str], *, changes: bool = False) -> dict:
    """The group, owners, tags and kinds of one of the account's assets (``changes``: the
    push, delete and cancel group)."""
    return {
        "group_name": settings.changes_group if changes else settings.group_name,
        "owners": list(settings.owners),
        "tags": dict(settings.tags),
        "kinds": kinds | set(settings.kinds),
    }
