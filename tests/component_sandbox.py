"""One account's ``defs.yaml`` built by Dagster's own component test helper
(``create_defs_folder_sandbox``): the definitions ``dg`` would load, without a subprocess."""

from __future__ import annotations

import dagster as dg
from dagster.components.testing import create_defs_folder_sandbox

from smsp_connector import SmspComponent


def sandbox_defs(attributes: dict) -> dg.Definitions:
    """The definitions of an ``SmspComponent`` with ``attributes`` (its key from
    ``SMSP_API_KEY``)."""
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(
            component_cls=SmspComponent,
            defs_path="account",
            defs_yaml_contents={
                "type": "smsp_connector.SmspComponent",
                "attributes": {"api_key": "{{ env.SMSP_API_KEY }}", **attributes},
            },
        )
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, defs):
            return defs
