# Two commands matter: `make run` (set up, start the daemon and the chat) and
# `make test` (set up, run every test). Both work on a fresh machine with only
# Python, pip, make and git.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup run install uninstall test coverage schemas bench bench-quick clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# The main job: the chat on the most recent session of this project; it starts the
# daemon, which answers from the offline emulator (loudly labelled) when no API key
# is configured.
run: setup
	$(VENV)/bin/duologue chat

# `duologue` from any directory: a link to this venv's command in BIN_DIR (the
# command's own interpreter line points at the venv, so the link works anywhere).
BIN_DIR ?= $(HOME)/.local/bin
install: setup
	mkdir -p $(BIN_DIR)
	ln -sfn $(abspath $(VENV))/bin/duologue $(BIN_DIR)/duologue
	@echo "linked $(BIN_DIR)/duologue -> $(abspath $(VENV))/bin/duologue"
	@case ":$$PATH:" in *":$(BIN_DIR):"*) ;; \
	  *) echo "warning: $(BIN_DIR) is not on your PATH; add it, e.g. to ~/.profile:"; \
	     echo '  export PATH="$(BIN_DIR):$$PATH"';; esac

# Remove the link `make install` made (the data stays: `duologue paths` lists it).
uninstall:
	@if [ -L $(BIN_DIR)/duologue ]; then rm $(BIN_DIR)/duologue && echo "removed $(BIN_DIR)/duologue"; fi

# Every test, in TEST_WORKERS processes; a test file stays in one of them (its tests
# share module fixtures and figures). The tests wait more than they compute, so more
# workers than cores pay; TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 4
test: setup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# The same tests, then branch coverage of daemon/ and protocol/ (daemon processes included).
coverage: setup
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --cov --cov-report=term

schemas: setup
	$(PY) schemas/generate.py

bench: setup
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m bench

# A few iterations of each benchmark: proves they still run; never rewrites RESULTS.md.
bench-quick: setup
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m bench --quick

clean:
	rm -rf $(VENV) build *.egg-info
