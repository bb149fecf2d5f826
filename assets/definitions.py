"""This deployment's code location: the components under ``assets/defs/`` (one SMS Partner
account, ``assets/defs/smsp/defs.yaml``), loaded as ``dg`` loads them."""

from pathlib import Path

import dagster as dg

defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
