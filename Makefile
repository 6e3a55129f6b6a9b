# The only set-up a fresh machine needs: `make demo` or `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch/torchvision pair that imports together (open_clip needs torchvision)
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test lint-imports typecheck bench bench-scale evaluate evaluate-laundering clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[zoo,eval,serve]'
	touch $@

$(VENV)/.dev: pyproject.toml plugins/attrib-example/pyproject.toml plugins/attrib-clip/pyproject.toml plugins/attrib-effnet/pyproject.toml \
    plugins/attrib-watermark/pyproject.toml | $(BIN)/python
	@free=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); [ "$$free" -ge 7 ] || \
	  echo "warning: $$free GiB free here; $(TORCH) needs about 6 GiB in $(VENV)" >&2
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev]' -e plugins/attrib-example -e plugins/attrib-clip -e plugins/attrib-effnet \
	  -e plugins/attrib-watermark
	touch $@ $(VENV)/.core

demo: $(VENV)/.core
	$(BIN)/attrib --gallery gallery/demo demo --data demo-data --fresh

test: $(VENV)/.dev
	$(BIN)/python -m pytest

# The package layout ([tool.importlinter] in pyproject.toml): each part imports only the layers below it
lint-imports: $(VENV)/.dev
	$(BIN)/lint-imports --no-cache

# mypy over the library, configured in pyproject.toml ([tool.mypy]: which modules are strict)
typecheck: $(VENV)/.dev
	$(BIN)/mypy

bench: $(VENV)/.core
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/bench_evidence.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_serve.py
	$(BIN)/python benchmarks/bench_thumbnails.py
	$(BIN)/python benchmarks/bench_delivery.py
	$(BIN)/python benchmarks/bench_versions.py

# Search over 10k/100k vectors, then galleries of 1k/10k/100k samples; 1M with
# make bench-scale SEARCH_SIZES=10k,100k,1m SIZES=1k,10k,100k,1m (about 25 minutes more)
SEARCH_SIZES ?= 10k,100k
SIZES ?= 1k,10k,100k
bench-scale: $(VENV)/.core
	$(BIN)/python benchmarks/bench_scale_search.py --sizes $(SEARCH_SIZES)
	$(BIN)/python benchmarks/bench_scale_enroll.py --sizes $(SIZES)

# The dev protocol of the decision issue: make evaluate [EXTRACTOR=residual+effnet] [REPEATS=20]
# 1) clean gallery, clean and JPEG-80 queries; 2) every image JPEG-80; 3) sd15/sdxl finetunes as one
# family; 4) a gallery of one generator, each known one in turn, every other label unknown.
DATA ?= ../shared/data/real-dev
EXTRACTOR ?= residual
REPEATS ?= 10
KNOWN := gpt4o stylegan2 sd15_finetune sdxl_finetune
LABELS := $(KNOWN) sd21 real
comma := ,
space := $(empty) $(empty)
EVAL_DEPS := $(if $(findstring effnet,$(EXTRACTOR))$(findstring clip,$(EXTRACTOR)),$(VENV)/.dev,$(VENV)/.core)
EVALUATE = $(BIN)/attrib evaluate $(DATA) --shots 10 --repeats $(REPEATS) --extractor $(EXTRACTOR)

evaluate: $(EVAL_DEPS)
	$(EVALUATE) --known $(subst $(space),$(comma),$(KNOWN)) --unknown sd21,real \
	  --condition center-crop:256 --query-condition jpeg:80
	$(EVALUATE) --known $(subst $(space),$(comma),$(KNOWN)) --unknown sd21,real --condition center-crop:256+jpeg:80
	$(EVALUATE) --known $(subst $(space),$(comma),$(KNOWN)) --unknown sd21,real \
	  --family stable-diffusion=sd15_finetune,sdxl_finetune
	for g in $(KNOWN); do \
	  $(EVALUATE) --known $$g --unknown $$(echo $(LABELS) | tr ' ' '\n' | grep -vx $$g | paste -sd,) || exit 1; \
	done

# The laundering report of the delivery issue: every query delivery of the default sweep (JPEG 95-50,
# WebP 80, resize 0.9-0.5, three chains) against the gallery of originals with its delivery versions, the
# same gallery without versions, and a gallery at that quality.
LAUNDER_REPORT ?= reports/laundering
evaluate-laundering: $(EVAL_DEPS)
	$(EVALUATE) --known $(subst $(space),$(comma),$(KNOWN)) --unknown sd21,real \
	  --condition center-crop:256 --sweep default --report $(LAUNDER_REPORT)

clean:
	rm -rf $(VENV) demo-data gallery/demo
