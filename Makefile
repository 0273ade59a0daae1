# Two commands on a fresh machine (Python 3.11+ and pip, the package index reachable):
#   make run    set up .venv and run the main job (train on full MNIST, tracked in MLflow)
#   make test   set up .venv and run the tests
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test setup clean lock

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[test]'
	$(VENV)/bin/mynn server prepare  # Prefect's migrated database, copied into new homes (about 20 s once)
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/mynn train

test: $(STAMP)
	$(VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV) .cache .runs mlflow.db mlartifacts

# Regenerate constraints.txt: the newest versions the package index offers for everything the
# project and its extras need, resolved in a throwaway environment. (No hashes: pip refuses
# hash-checking for the editable install that `make setup` does.)
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet '.[test,dask,tune]'
	.lock-venv/bin/python -m pip freeze --all --exclude mynn --exclude pip | LC_ALL=C sort -f > constraints.txt
	rm -rf .lock-venv
