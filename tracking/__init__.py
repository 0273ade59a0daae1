"""MLflow: runs, logging, plots, the model flavour and the registry."""
