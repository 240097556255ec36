# Mission Karmayogi MoU reporting pipeline.
#   make run    set up .venv, generate sample deliveries, run Airflow with the DAGs
#   make test   set up .venv, run the whole test suite
#   make bench  side-by-side benchmark (see BENCHMARKS.md; SCALE=0.05 smaller,
#               BACKEND=postgresql for the PostgreSQL warehouse, RUNS=1 one run
#               each of limit and ours instead of the faster of 2)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench lock clean venv

venv: $(STAMP)

# The venv is (re)installed when the lock changes. The .pth file puts plugins/
# on sys.path so `python -m mou_etl`, pytest and Airflow all import mou_etl.
$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@site="$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" && \
	  echo "$(CURDIR)/plugins" > "$$site/mou_etl_plugins.pth"
	@touch $(STAMP)

run: $(STAMP)
	$(PY) -m mou_etl.standalone

# Two pytest workers (pytest-xdist), one test file per worker at a time: the
# suite is mostly single-threaded subprocesses, and a module's fixtures (the
# e2e nights) are built once. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: $(STAMP)
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

bench: $(STAMP)
	$(PY) -m mou_etl.bench $(if $(SCALE),--scale $(SCALE),) $(if $(BACKEND),--backend $(BACKEND),) \
		$(if $(RUNS),--runs $(RUNS),)

# Rewrites the lock from the current venv (after adding a dependency by hand).
lock: $(STAMP)
	@{ echo "# Full lock of the project's Python environment (pip freeze of a working .venv)."; \
	   echo "# Regenerate with: make lock"; $(VENV)/bin/pip freeze --exclude-editable; } > requirements.txt.new
	@mv requirements.txt.new requirements.txt

clean:
	rm -rf data .airflow .pytest_cache
