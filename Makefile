# Set-up and everyday commands. Everything runs in a virtual environment (.venv by default).
VENV ?= .venv
PY := $(VENV)/bin/python
# torch/torchvision builds known to work together here (override for other platforms).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
DEMO_CONFIG ?= configs/dira/dira_mocov2_demo.py
DEMO_DIR ?= work_dirs/demo
DEMO3D_CONFIG ?= configs/dira3d/dira_mocov2_demo3d.py
DEMO3D_DIR ?= work_dirs/demo3d

.PHONY: install demo demo3d test test-all clean-demo clean-demo3d

$(VENV)/.installed: setup.py requirements/runtime.txt requirements/tests.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip wheel
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e '.[tests]'
	touch $@

install: $(VENV)/.installed

# Pre-train DiRA-MoCo-v2 on the embedded data (procedural chest phantoms + a real radiograph).
demo: install
	$(PY) tools/misc/make_demo_data.py --out data/demo
	$(PY) tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO_DIR)

# Pre-train 3-D DiRA-MoCo-v2 on the 3-D demo data (chest-CT phantoms in HU + the MNI152 MRI).
demo3d: install
	$(PY) tools/misc/make_ct_demo_data.py --out data/demo3d
	$(PY) tools/train.py $(DEMO3D_CONFIG) --work-dir $(DEMO3D_DIR)

# The test suite CI runs (about 9 minutes on 2 idle CPU cores).
test: install
	$(PY) -m pytest tests -q

# Also the slow tests (marked `slow`).
test-all: install
	$(PY) -m pytest tests -q -m 'slow or not slow'

clean-demo:
	rm -rf data/demo $(DEMO_DIR)

clean-demo3d:
	rm -rf data/demo3d $(DEMO3D_DIR)
