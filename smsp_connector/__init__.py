"""smsp-connector: keep the SMS Partner stop list in sync with your warehouse."""
