# The two commands of the README. Each installs what it needs into .venv first.
PY := .venv/bin/python
DATA ?= work/demo

.PHONY: main test venv
venv:
	@bash tools/bootstrap.sh

main: venv
	@DATA=$(DATA) bash tools/main_job.sh

test: venv
	@.venv/bin/python -m pytest -q tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider
