# The two commands of the README. Each installs what it needs into .venv first.
PY := .venv/bin/python
DATA ?= work/demo

.PHONY: main test venv curve
venv:
	@bash tools/bootstrap.sh

main: venv
	@DATA=$(DATA) bash tools/main_job.sh

test: venv
	@.venv/bin/python -m pytest -q tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

# The context-effect curve (world v2, 5 worlds x 7 presets x 3 seeds; see workbench/data/SIMULATOR.md for its time).
curve: venv
	@bash tools/curve_job.sh
