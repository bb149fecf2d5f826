"""This deployment's code location: one SMS Partner account configured from the environment
(see the README's configuration table)."""

from smsp_connector.dagster import build_definitions

smsp = build_definitions()
defs = smsp.definitions
