# The two commands a newcomer needs (README): `make lab` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages: shellcheck for ansible-test sanity, iptables for the lab's pod network namespaces
# (tokenlabs.lab.kubelet), plus what the TTS service's CPU engines need.
APT_PACKAGES := shellcheck iptables $(shell cat services/magpie_tts/apt-packages.txt 2>/dev/null)
TTS_EXTRAS ?= test,piper
COLLECTION_LINK := collections/ansible_collections/tokenlabs/platform

.PHONY: setup bins lab lab-down lab-status lint sanity pytest test clean

setup: $(STAMP) $(COLLECTION_LINK)

$(STAMP): requirements.txt pyproject.toml $(wildcard services/magpie_tts/pyproject.toml)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$sudo apt-get update -qq && $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	if [ -f services/magpie_tts/pyproject.toml ]; then $(BIN)/pip install --quiet -e 'services/magpie_tts[$(TTS_EXTRAS)]'; fi
	touch $@

# The repository is the collection; ansible.cfg looks for it under ./collections.
$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../.. $@

# The Kubernetes binaries and the controllers build side by side (separate caches and locks): a Go build
# leaves a core idle while it links, and the other build takes it.
bins: setup
	bash tools/k8s-bins/build.sh >/dev/null & k8s=$$!; \
	$(BIN)/python -m tokenlabs.lab.controllers >/dev/null || { wait $$k8s; exit 1; }; \
	wait $$k8s

lab: setup bins
	$(BIN)/tokenlabs lab up

lab-down: setup
	$(BIN)/tokenlabs lab down

lab-status: setup
	$(BIN)/tokenlabs lab status

lint: setup
	$(BIN)/ruff check .
	$(BIN)/yamllint --strict .
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/ansible-lint --offline

sanity: setup
	PATH=$(abspath $(BIN)):$$PATH bash tests/sanity/run.sh

pytest: setup bins
	PATH=$(abspath $(BIN)):$$PATH $(BIN)/python -m pytest --durations=30

# The builds run while the linters do; pytest needs both.
test: setup
	$(MAKE) --no-print-directory -j2 bins lint sanity
	$(MAKE) --no-print-directory pytest

clean:
	-$(BIN)/tokenlabs lab down
	rm -rf $(VENV) collections .lab
