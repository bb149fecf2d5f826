"""The extract and the changes to the provider's list sit in two asset groups: "Materialize all"
on the extract's group needs no run config, and materializing the stop list (or the whole
group) finds no upstream asset the UI would call never materialized; a push or deletion run
still refreshes the stop list after its calls, in the same run."""

from __future__ import annotations

import dagster as dg
import pytest

from smsp_connector.dagster import build_definitions
from smsp_connector.dagster.component import SmspComponent
from smsp_connector.settings import PushSource, Settings

from .conftest import API_KEY

SOURCE = PushSource(name="crm", table="crm.unsubscribes", phone_column="mobile")


def _built(**settings):
    return build_definitions(Settings(api_key=API_KEY, push_sources=(SOURCE,), **settings))


def _groups(built) -> dict[str, set[str]]:
    graph = built.definitions.resolve_asset_graph()
    groups: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        groups.setdefault(graph.get(key).group_name, set()).add(key.path[-1])
    return groups


def _never_materialized_upstream(graph, selection: set[dg.AssetKey]) -> set[str]:
    """What the UI's Materialize button asks "Are you sure?" about: the selection's direct
    parents outside it that can be materialized (and so may never have been)."""
    parents = {parent for key in selection for parent in graph.get(key).parent_keys}
    return {
        parent.to_user_string()
        for parent in parents - selection
        if graph.get(parent).is_materializable
    }


def test_the_changes_have_a_group_of_their_own_by_default():
    assert Settings().changes_group == "smsp_changes"
    assert Settings(group_name="acme").changes_group == "acme_changes"
    assert Settings(changes_group_name="smsp").changes_group == "smsp", "one group, if asked"

    groups = _groups(_built())

    assert set(groups) == {"smsp", "smsp_changes", "smsp_reports"}
    assert groups["smsp_changes"] == {
        "inbox_add_csv",
        "inbox_delete_csv",
        "inbox_cancel_csv",
        "stop_list_additions",
        "stop_list_deletions",
        "message_cancellations",
        "opt_outs_crm",
        "stop_list_additions_crm",
    }
    assert {"stop_list", "stop_list_history", "suppression_export", "audit_log"} <= groups["smsp"]


def test_materialize_all_on_the_extract_group_needs_no_run_config():
    built = _built()
    graph = built.definitions.resolve_asset_graph()
    extract_group = dg.AssetSelection.groups("smsp")
    materializable = {
        key for key in extract_group.resolve(graph) if graph.get(key).is_materializable
    }
    assert built.keys.stop_list in materializable
    job = dg.Definitions.merge(
        built.definitions,
        dg.Definitions(
            jobs=[dg.define_asset_job("materialize_all", dg.AssetSelection.assets(*materializable))]
        ),
    ).resolve_job_def("materialize_all")

    # What the launchpad would ask for: nothing, so the UI launches the run at once.
    dg.validate_run_config(job, {})


@pytest.mark.parametrize("scope", ["stop_list", "extract group"])
def test_materializing_the_extract_finds_no_never_materialized_upstream(scope):
    built = _built()
    graph = built.definitions.resolve_asset_graph()
    if scope == "stop_list":
        selection = {built.keys.stop_list}
    else:
        selection = {
            key
            for key in dg.AssetSelection.groups("smsp").resolve(graph)
            if graph.get(key).is_materializable
        }

    assert _never_materialized_upstream(graph, selection) == set()


def _upstream_steps(job: dg.JobDefinition, step: str) -> set[str]:
    dependencies = {
        invocation.name: {
            node.node for dep in deps.values() for node in dep.get_node_dependencies()
        }
        for invocation, deps in job.graph.dependencies.items()
    }
    seen: set[str] = set()
    todo = [step]
    while todo:
        for parent in dependencies.get(todo.pop(), set()):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return seen


@pytest.mark.parametrize(
    ("job_name", "mutation"),
    [("push_stop_numbers", "additions"), ("delete_stop_numbers", "deletions")],
)
def test_a_push_or_deletion_run_refreshes_the_stop_list_after_its_calls(job_name, mutation):
    built = _built()
    job = built.job(job_name)
    keys = built.keys
    stop_list, changes = keys.op_name(keys.stop_list), keys.op_name(getattr(keys, mutation))

    assert changes in _upstream_steps(job, stop_list), f"{stop_list} must wait for {changes}"
    for downstream in (keys.history, keys.export, keys.export_sha256):
        assert stop_list in _upstream_steps(job, keys.op_name(downstream))


def test_a_component_s_changes_group_follows_its_key_prefix_or_its_own_attribute():
    main = SmspComponent(api_key="SMSP_API_KEY", key_prefix="main")
    named = SmspComponent(
        api_key="SMSP_API_KEY", key_prefix="main", group_name="crm", changes_group_name="crm_ops"
    )

    assert (main.settings().group_name, main.settings().changes_group) == ("main", "main_changes")
    assert (named.settings().group_name, named.settings().changes_group) == ("crm", "crm_ops")
