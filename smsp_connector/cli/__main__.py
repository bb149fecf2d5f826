"""``python -m smsp_connector.cli``: the ``smsp`` command."""

from smsp_connector.cli.main import main

main()
