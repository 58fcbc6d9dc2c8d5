PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv test demo clean cmudict-g2p figures

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

# Redraws the figures of docs/concepts.md and docs/questions.md from runs that must exist:
# the ready model's member (make cmudict-g2p, or GALLERY_RUN=...), runs/zh_en
# (configs/zh_en.yaml) and the question grids (benchmarks/ablate.py <grid>). Chinese
# characters need a CJK font (Debian: fonts-noto-cjk).
GALLERY_RUN ?= $(G2P_RUNS)/seed1-avg
Q3 := runs/ablate/q3-attention-timing
figures: venv
	$(VENV)/bin/tfseq2seq plot-attention $(GALLERY_RUN) gnome brighter biosphere daughtrey thought \
		psychology --greedy-and-beam -o docs/attention_gallery.png
	$(VENV)/bin/tfseq2seq plot-attention runs/zh_en 早上好 早上 晚安 --greedy-and-beam \
		-o docs/zh_en_good_morning.png
	$(VENV)/bin/tfseq2seq plot-attention $(Q3)/luong/seed0 gnome brighter biosphere daughtrey \
		--compare $(Q3)/bahdanau/seed0 -o docs/questions/q3_attention.png
	for grid in q1-why-tanh q1-cmudict q2-scheduled-sampling q3-attention-timing note-claims; do \
		$(PY) benchmarks/ablate.py benchmarks/grids/$$grid.yaml --summary > /dev/null || exit 1; done
	cp runs/ablate/q1-why-tanh/dynamics.png docs/questions/q1_reverse_dynamics.png
	cp runs/ablate/q1-cmudict/dynamics.png docs/questions/q1_cmudict_dynamics.png
	cp runs/ablate/q2-scheduled-sampling/exposure.png docs/questions/q2_exposure.png
	cp runs/ablate/q2-scheduled-sampling/butterfly.png docs/questions/q2_butterfly.png
	cp runs/ablate/q2-scheduled-sampling/summary.png docs/questions/q2_summary.png
	cp runs/ablate/q3-attention-timing/summary.png docs/questions/q3_summary.png
	cp runs/ablate/note-claims/length.png docs/questions/notes_length.png

clean:
	rm -rf $(VENV) runs export/*/
