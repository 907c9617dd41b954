# Two commands do everything on a fresh machine (Python 3.11 and Go on PATH, nothing else):
#   make report   set up, run every default-tier scenario against native, Hatchet and Celery, print the report path
#   make test     set up, run the unit tests and `pytest scenarios/` on the real stack
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.installed

.PHONY: help setup venv tools browser servers report test smoke unit scenarios lint bench bench-tier clean docker-setup \
  docker-test

help:
	@echo "make report   set up and run every scenario against native, Hatchet and Celery; prints the report path"
	@echo "make test     set up and run unit tests plus pytest scenarios/ (real Postgres, Hatchet, workers)"
	@echo "make lint     ruff and mypy"
	@echo "make bench    set up and measure the harness's own cost and spread (writes reports/bench/bench-<time>.json)"
	@echo "make bench-tier  time the default tier, pytest scenarios/ (long)"
	@echo "make tools    only build the pinned Hatchet and Toxiproxy binaries (cached)"
	@echo "make browser  only install Debian's chromium (headless browser of the report test) if missing"
	@echo "make docker-test  the Docker tier: images built locally, baseline/app-kill/worker-kill/deploy-restart"
	@echo "              on the Docker backend, docker-compose.yml brought up (starts a private dockerd if needed)"
	@echo "make servers  only install Debian's redis-server (Celery's broker), rabbitmq-server (Hatchet's queue),"
	@echo "              iptables (--hosts) and wrk (bench) if missing"
	@echo "make smoke    set up and run the smoke tier: pytest scenarios/ -m smoke (the seed's claims, about 5 min)"

setup: venv tools browser servers

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "error: Python 3.11 is required (found " + sys.version.split()[0] + " at " + sys.executable + "); set PYTHON=/path/to/python3.11")'
	@echo "==> creating $(VENV) and installing pinned Python dependencies (requirements.lock)"
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	@$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

tools: venv
	@echo "==> pinned servers: Hatchet engine and Toxiproxy (built once from the Go module proxy, then cached)"
	@$(BIN)/python -m harness.tools

# The report's browser test drives Debian's chromium (Playwright cannot download its own browser here).
BROWSER := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

browser:
	@[ -x $(BROWSER) ] || { echo "==> installing Debian's chromium for the report's browser test (apt-get)"; \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; } \
	    > /tmp/harness-apt-chromium.log 2>&1 && [ -x $(BROWSER) ] \
	  || { echo "error: could not install chromium with apt-get (see /tmp/harness-apt-chromium.log); install Debian's chromium package and re-run"; exit 1; }; }

# What systems and the harness start besides Python: Celery's Redis broker (Debian's redis-server) and Hatchet's
# message queue (Debian's rabbitmq-server; the packages' own services are stopped if apt started them: the harness
# starts private servers with each run), iptables (network partitions between the hosts of `--hosts N`); and wrk,
# the neutral HTTP client `make bench` measures the downstream service with (bench/downstream_cost.py).
APT_NEEDS := /usr/bin/redis-server:redis-server /usr/sbin/rabbitmq-server:rabbitmq-server /usr/sbin/iptables:iptables \
  /usr/bin/wrk:wrk

servers:
	@missing=$$(for need in $(APT_NEEDS); do [ -x $${need%%:*} ] || echo $${need##*:}; done); \
	[ -z "$$missing" ] || { echo "==> installing Debian's $$missing (apt-get)"; \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; } \
	    > /tmp/harness-apt-servers.log 2>&1 \
	  || { echo "error: could not install $$missing with apt-get (see /tmp/harness-apt-servers.log)"; exit 1; }; \
	  $(SUDO) service redis-server stop > /dev/null 2>&1 || true; \
	  $(SUDO) service rabbitmq-server stop > /dev/null 2>&1 || true; $(SUDO) epmd -kill > /dev/null 2>&1 || true; }

report: setup
	@$(BIN)/harness run all --system all

test: setup
	@$(BIN)/pytest

smoke: setup
	@$(BIN)/pytest scenarios -m smoke

unit: venv browser servers
	@$(BIN)/pytest tests

scenarios: setup
	@$(BIN)/pytest scenarios

lint: venv
	@$(BIN)/ruff check harness apps scenarios tests bench findings
	@$(BIN)/mypy

# The harness's own cost (ledger, checker, stack start) and spread (baseline x5); README "Benchmarks".
bench: setup
	@$(BIN)/python -m bench.run all

bench-tier: setup
	@$(BIN)/python -m bench.run tier

# The Docker tier: Debian's docker.io (dockerd) and debootstrap (the local base image), the Toxiproxy CLI
# and Docker Compose built from the Go module proxy; then the tests and scenarios on the Docker backend.
# A private dockerd is started when no engine is reachable (root), and stopped at the end.
DOCKER_TIER := tests/harness/backends/test_docker.py tests/harness/backends/test_images.py \
  tests/harness/backends/test_dockerd.py \
  scenarios/test_baseline.py scenarios/test_app_kill.py scenarios/test_worker_kill.py scenarios/test_deploy_restart.py

docker-setup: setup
	@{ command -v dockerd && command -v debootstrap; } >/dev/null 2>&1 || { \
	  echo "==> installing Debian's docker.io and debootstrap for the Docker tier (apt-get)"; \
	  { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq docker.io debootstrap; } \
	    > /tmp/harness-apt-docker.log 2>&1 \
	  || { echo "error: could not install docker.io and debootstrap with apt-get (see /tmp/harness-apt-docker.log)"; exit 1; }; }
	@$(BIN)/python -m harness.tools --docker

# --serial: side by side, the four systems' containers (Celery's 2 x 50 prefork children twice) overload two
# cores: a restarted worker then missed its 60 s health check (README, Docker).
docker-test: docker-setup
	@$(BIN)/pytest -n 0 --backend docker --dockerd auto --serial $(DOCKER_TIER)
	@$(BIN)/python -m harness.backends.dockerd check

clean:
	rm -rf $(VENV) .tools reports/2* reports/latest .mypy_cache .ruff_cache .pytest_cache

# The findings catalogue (findings/*.toml): list it, and re-run every reproduction (each starts only what it needs:
# real engine, Postgres, RabbitMQ, Redis, Celery workers, Toxiproxy). Writes reports/findings/<time>/findings.json
# (and its page) and prints one line per finding; NAMES= checks some, SDK= a version (hatchet-sdk==1.38.0). The SDK
# findings run on the lock's hatchet-sdk (1.43.1) and on the release pinned before it (its venv: sdk-versions, below). About 12 minutes.
findings: setup sdk-versions
	@$(BIN)/harness findings list
	@$(BIN)/harness findings check $(NAMES) $(foreach s,$(SDK),--sdk $(s))

# Library versions other than the lock's, each in its own venv (.venv-sdk/<dist>-<version>): the lock's
# dependencies with that one version from PyPI, and this project (editable), so a finding's clients can run on
# another release: `harness findings check NAME --sdk hatchet-sdk==1.38.0`. What the version changed beside itself
# is kept in the venv's changes.txt. The Hatchet engine has no such axis: the Go module proxy serves no tag after
# v0.105.0, so it stays pinned.
SDK_VERSIONS ?= hatchet-sdk==1.38.0
SDK_VENVS := .venv-sdk

.PHONY: findings sdk-versions

sdk-versions: venv
	@set -e; for req in $(SDK_VERSIONS); do \
	  dist=$${req%%==*}; ver=$${req##*==}; dir=$(SDK_VENVS)/$$dist-$$ver; \
	  if [ -x $$dir/bin/python ] && $$dir/bin/python -c "import importlib.metadata as m, sys; \
	      sys.exit(m.version('$$dist') != '$$ver')" 2>/dev/null; then echo "==> $$dir ready"; continue; fi; \
	  echo "==> $$dir: the lock's dependencies with $$dist $$ver from PyPI"; \
	  rm -rf $$dir; $(PYTHON) -m venv $$dir; \
	  grep -iv "^$$dist==" requirements.lock > $$dir/requirements.txt; \
	  $$dir/bin/pip install --quiet --disable-pip-version-check -r $$dir/requirements.txt; \
	  $$dir/bin/pip install --quiet --disable-pip-version-check "$$req"; \
	  $$dir/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .; \
	  $$dir/bin/pip freeze --exclude-editable | sort -f > $$dir/installed.txt; echo '*' > $(SDK_VENVS)/.gitignore; \
	  { diff <(sort -f requirements.lock) $$dir/installed.txt || true; } > $$dir/changes.txt; \
	  echo "    $$dist $$ver installed; changed from the lock:"; sed 's/^/      /' $$dir/changes.txt; \
	done
