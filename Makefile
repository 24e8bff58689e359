# Two entry points a fresh machine needs: `make demo` and `make test` (both install what they need).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
APT_PKGS := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO := build/demo

.PHONY: setup apt demo test bench clean

setup: apt $(VENV)/.installed

apt:
	@command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null && command -v chromium >/dev/null \
	  && [ -e /usr/lib/arm-none-eabi/newlib/thumb/v7e-m+fp/hard/libc.a ] \
	  || ($(SUDO) apt-get update -qq && \
	      DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PKGS))

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[torch,tflite,test,nas]'
	touch $@

demo: setup
	$(BIN)/python examples/cnn/make_model.py --out $(DEMO)
	$(BIN)/edgec compile $(DEMO)/model.pt --target stm32f746 --calib $(DEMO)/calib.npy -o $(DEMO)/net
	$(BIN)/edgec run $(DEMO)/net --input $(DEMO)/x.npy --output $(DEMO)/y.npy
	@cat $(DEMO)/net/report.md

test: setup
	$(BIN)/python -m pytest -n 2 -q

bench: setup
	$(BIN)/python benchmarks/shared_models.py

clean:
	rm -rf build .pytest_cache
