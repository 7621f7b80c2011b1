# The two set-up commands of README.md: `make run` and `make test`. Both work on a fresh machine with python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config/relay.example.yaml

# Test workers (pytest-xdist): two per core by default, since most tests spend their time waiting on sockets
# and subprocesses (-n 4 ran the suite in 192 s where -n 2 took 211 s on 2 cores); each test has its own
# tmp dir, ports and store.
WORKERS ?= $(shell $(PYTHON) -c 'import os; print(2 * (os.cpu_count() or 1))')

.PHONY: run test test-postgres lint bench clean translations

$(BIN)/mentor-relay: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev: $(BIN)/mentor-relay
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

run: $(BIN)/mentor-relay
	$(BIN)/mentor-relay --config $(CONFIG) serve

test: $(VENV)/.dev
	MENTOR_RELAY_TEST_DATABASE= $(BIN)/python -m pytest -n $(WORKERS) --durations=10

# The suite on PostgreSQL: on the server MENTOR_RELAY_TEST_DATABASE names (postgresql://user:pass@host:port/db,
# a user allowed to CREATE DATABASE), else on a throw-away cluster started from Debian's postgresql package.
test-postgres: $(VENV)/.dev
ifdef MENTOR_RELAY_TEST_DATABASE
	MENTOR_RELAY_TEST_DATABASE='$(MENTOR_RELAY_TEST_DATABASE)' $(BIN)/python -m pytest -n $(WORKERS) --durations=10
else
	$(BIN)/python -m tests.pgcluster run -- $(BIN)/python -m pytest -n $(WORKERS) --durations=10
endif

lint: $(VENV)/.dev
	$(BIN)/ruff check relay tests bench
	$(BIN)/mypy relay

# The notices' message catalogs: extract the strings of the templates into notices.pot, merge them into
# each language's .po (new strings come in empty, changed ones fuzzy: translate them), compile the .mo
# files that ship in the package. tests/test_translations.py fails while a .po and its .mo differ.
LOCALE := relay/notices/locale
translations: $(VENV)/.dev
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output --omit-header \
		-k _ -k gettext -k ngettext:1,2 -o $(LOCALE)/notices.pot .
	$(BIN)/pybabel update -D notices -i $(LOCALE)/notices.pot -d $(LOCALE) --no-wrap --ignore-obsolete --ignore-pot-creation-date
	$(BIN)/pybabel compile -D notices -d $(LOCALE)

bench: $(VENV)/.dev
	$(BIN)/python bench/throughput.py --messages 3000

clean:
	rm -rf $(VENV) var .pytest_cache
