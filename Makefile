# sidlite: two commands set everything up on a fresh machine — `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel is enough for everything; set TORCH_SPEC="torch" (or a CUDA build) on a GPU machine.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed-stamp
OUT ?= outputs/demo
NBVAL_TIMEOUT ?= 240
# make lab: the address JupyterLab listens on (0.0.0.0 for every interface), its port, extra options.
LAB_IP ?= 127.0.0.1
LAB_PORT ?= 8888
LAB_ARGS ?=
# As root (a container, a cloud VM) Jupyter refuses to start without --allow-root: pass it there, as the
# Jupyter docker-stacks images do.
LAB_ROOT := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)

# make slides: reveal.js, require.js, jQuery and MathJax come from the npm registry (npm pack), never from a CDN.
VENDOR ?= .vendor
REVEAL_JS ?= 4.6.1
REQUIREJS ?= 2.3.7
JQUERY ?= 3.7.1
MATHJAX ?= 2.7.9
SLIDES_ARGS ?=
# make book uses the vendored MathJax when `make vendor` has run (equations offline), else MathJax's CDN.
BOOK_VENDOR = $(if $(wildcard $(VENDOR)/mathjax/MathJax.js),--vendor $(VENDOR),)

.PHONY: help install demo test test-unit test-book lab book book-fast slides vendor student bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[book,test]"
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install sidlite with the book and test extras

demo: $(STAMP) ## generate samples (and the application gallery) from a bundled image into outputs/demo
	$(PY) -m sidlite demo --output $(OUT) --overwrite

test: $(STAMP) ## every test: unit tests and every notebook in book/ under nbval
	SIDLITE_FAST=1 MPLBACKEND=Agg $(PY) -m pytest tests book --nbval-lax --nbval-cell-timeout=$(NBVAL_TIMEOUT) -p no:cacheprovider

test-unit: $(STAMP) ## the unit tests only
	$(PY) -m pytest tests -p no:cacheprovider

test-book: $(STAMP) ## the notebooks only, under nbval
	SIDLITE_FAST=1 MPLBACKEND=Agg $(PY) -m pytest book --nbval-lax --nbval-cell-timeout=$(NBVAL_TIMEOUT) -p no:cacheprovider

lab: $(STAMP) ## JupyterLab on the book (LAB_IP=0.0.0.0 LAB_PORT=8888 to reach it from another machine)
	$(VENV)/bin/jupyter lab book --ip=$(LAB_IP) --port=$(LAB_PORT) $(if $(filter 127.0.0.1 localhost,$(LAB_IP)),,--no-browser) $(LAB_ROOT) $(LAB_ARGS)

book: $(STAMP) ## execute every chapter offline (full mode) into HTML under _build/html; times in docs/book-runtimes.md
	$(PY) scripts/render_book.py --output _build/html --runtimes docs/book-runtimes.md $(BOOK_VENDOR)

book-fast: $(STAMP) ## the same in fast mode (small sizes, as in CI); its times go in their own column
	$(PY) scripts/render_book.py --output _build/html --fast --runtimes docs/book-runtimes.md $(BOOK_VENDOR)

$(VENDOR)/.stamp-$(REVEAL_JS)-$(REQUIREJS)-$(JQUERY)-$(MATHJAX):
	@command -v npm >/dev/null || { echo "make slides needs npm (e.g. apt-get install npm) to fetch reveal.js"; exit 1; }
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/packs
	cd $(VENDOR)/packs && npm pack --silent reveal.js@$(REVEAL_JS) requirejs@$(REQUIREJS) jquery@$(JQUERY) mathjax@$(MATHJAX)
	for name in reveal.js requirejs jquery mathjax; do mkdir -p $(VENDOR)/$$name && \
		tar xzf $(VENDOR)/packs/$$name-*.tgz --strip-components=1 -C $(VENDOR)/$$name --exclude='package/unpacked'; done
	rm -rf $(VENDOR)/packs && touch $@

vendor: $(VENDOR)/.stamp-$(REVEAL_JS)-$(REQUIREJS)-$(JQUERY)-$(MATHJAX) ## reveal.js, require.js, jQuery and MathJax from npm into .vendor/ (for make slides)

slides: $(STAMP) vendor ## every chapter as an offline reveal.js deck under _build/slides (SLIDES_ARGS=--fast for small sizes)
	$(PY) scripts/slides.py --output _build/slides --vendor $(VENDOR) $(SLIDES_ARGS)

student: $(STAMP) ## a copy of the book with exercise solutions removed, under student/
	$(PY) scripts/student_copy.py book student

bench: $(STAMP) ## run the benchmarks and the evaluation table; JSON and Markdown land in benchmarks/results/
	$(PY) benchmarks/run.py
	$(PY) benchmarks/evaluation.py

clean: ## remove outputs and rendered pages (keeps .venv)
	rm -rf outputs _build student
