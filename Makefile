PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv test demo clean cmudict-g2p

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest -q -p no:cacheprovider tests

demo: venv
	$(VENV)/bin/tfseq2seq demo

# Reproduces the ready model models/cmudict-g2p (card: models/cmudict-g2p/README.md):
# two members of configs/cmudict-g2p.yaml (seeds 1 and 2) trained at the same time, one
# core each; each averaged over its last G2P_AVERAGE epochs; exported as one ensemble
# into export/cmudict-g2p/<next version>, then scored on dev through that export.
# Interrupted? Run it again: training resumes where it stopped.
G2P_RUNS := runs/cmudict-g2p
G2P_AVERAGE ?= 5
cmudict-g2p: venv
	$(MAKE) -j2 $(G2P_RUNS)/seed1/history.json $(G2P_RUNS)/seed2/history.json
	$(MAKE) $(G2P_RUNS)/seed1-avg/averaged.json $(G2P_RUNS)/seed2-avg/averaged.json
	$(VENV)/bin/tfseq2seq export $(G2P_RUNS)/seed1-avg --ensemble $(G2P_RUNS)/seed2-avg \
		--base-path export/cmudict-g2p
	$(VENV)/bin/tfseq2seq evaluate --model export/cmudict-g2p --split dev
	$(VENV)/bin/tfseq2seq evaluate --model export/cmudict-g2p --split dev --beam-search

$(G2P_RUNS)/seed%/history.json:
	@mkdir -p $(G2P_RUNS)
	@echo "training member seed $*; its progress: tail -f $(G2P_RUNS)/seed$*.log"
	TF_NUM_INTRAOP_THREADS=1 $(VENV)/bin/tfseq2seq train --config configs/cmudict-g2p.yaml \
		--run-dir $(G2P_RUNS)/seed$* --set training.seed=$* >> $(G2P_RUNS)/seed$*.log 2>&1

$(G2P_RUNS)/seed%-avg/averaged.json: $(G2P_RUNS)/seed%/history.json
	rm -rf $(@D)
	$(VENV)/bin/tfseq2seq average $(G2P_RUNS)/seed$* --last $(G2P_AVERAGE) --output $(@D)

clean:
	rm -rf $(VENV) runs export/*/
