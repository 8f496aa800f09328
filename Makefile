# DenseKit: `make demo` and `make test` are all a newcomer needs (see README.md).

SWIFT      ?= swift
PYTHON     ?= python3
CACHE      ?= $(HOME)/.cache/densekit
VENV_TORCH := $(CACHE)/venv-torch
VENV_TF    := $(CACHE)/venv-tf
FULL       := fixtures/full
IMAGES     := fixtures/images
SKIMAGE    := scikit-image==0.25.2
BIN        := .build/release/densekit
APT_DEPS   := libhdf5-dev libprotobuf-c-dev protobuf-c-compiler libturbojpeg0-dev libspng-dev libflatbuffers-dev pkgconf

# The executor's SIMD kernels need the CPU's vector instructions named at compile time; without them
# every fused multiply-add becomes a libm call. Chosen from this machine's CPU; portable otherwise.
CPU_FLAGS := $(shell \
  if grep -q avx512f /proc/cpuinfo 2>/dev/null; then \
    if grep -q AuthenticAMD /proc/cpuinfo; then echo znver4; else echo skylake-avx512; fi; \
  elif grep -q avx2 /proc/cpuinfo 2>/dev/null; then echo haswell; fi)
# With AVX-512's 32 vector registers the GEMM's register tile is 8 x 32 in one piece; with 16 (AVX2,
# SSE) it is cut into 4 x 16 quarters, which fit (see GEMM.tile).
# Every one of these has AVX2, whose integer multiply-adds the integer GEMM reaches (IntegerGEMM).
SWIFT_FLAGS := -c release $(if $(CPU_FLAGS),-Xswiftc -target-cpu -Xswiftc $(CPU_FLAGS) -Xswiftc -DDENSEKIT_AVX2) \
  $(if $(filter znver4 skylake-avx512,$(CPU_FLAGS)),-Xswiftc -DDENSEKIT_AVX512)

# Pinned versions of the tools that make fixtures (test-time only; the product never needs Python).
TORCH_PKGS := torch==2.15.0 torchvision==0.29.2 onnx==1.23.2 onnxruntime==1.32.0 onnxscript==0.7.2 safetensors==0.8.0 monai==1.6.1 torchxrayvision==1.5.7 timm==1.0.31 onnxconverter-common==1.16.0 pillow==13.0.0 pypng==0.20220715.0 h5py numpy
TF_PKGS    := tensorflow-cpu==2.21.0 tf_keras==2.21.0 keras==3.15.1 tf2onnx==1.17.0 onnxruntime==1.32.0 pillow==13.0.0 h5py numpy
# onnx2tf for one committed fixture only (make fixtures; the tests never need it): its own venv, as it pins onnx.
VENV_O2T   := $(CACHE)/venv-onnx2tf
O2T_PKGS   := tensorflow-cpu==2.21.0 tf_keras==2.21.0 onnx==1.17.0 onnx2tf==1.28.8 onnx-graphsurgeon==0.6.1 sng4onnx==2.0.1 psutil==7.2.2 ai-edge-litert==2.3.0 numpy

.PHONY: all deps build lint test test-asan demo proto tflite-schema fixtures fixtures-full fixtures-images bench clean venvs

all: build

deps:
	@missing=""; for p in $(APT_DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build $(SWIFT_FLAGS) --product densekit

# swift-format (it ships with the toolchain) with the committed .swift-format, and no line over 120
# columns (the formatter cannot break a long comment or string literal).
lint:
	$(SWIFT) format lint --strict --recursive --parallel Sources Tests Fuzz/Sources Package.swift
	@long=$$(awk 'length > 120 { print FILENAME ":" FNR ": " length " columns" }' $$(find Sources Tests Fuzz/Sources -name '*.swift')); \
	  if [ -n "$$long" ]; then echo "$$long"; echo "lines over 120 columns"; exit 1; fi

# The tests load what `convert` writes in torch, onnxruntime, tf_keras and Keras 3 (the cached venvs).
# CI (CI=true) also builds the full-size DenseNet-121 fixtures; locally they are used when present.
# No test uses `@testable import`, so the tests are built on the modules `build` compiled; with testable
# imports SwiftPM would compile every module a second time (docs/performance.md).
test: build venvs fixtures-images $(if $(CI),fixtures-full)
	DENSEKIT_CACHE=$(CACHE) $(SWIFT) test $(SWIFT_FLAGS) --disable-testable-imports

demo: build
	@echo "== inspect"; $(BIN) inspect fixtures/tv-tiny-legacy-opset17.onnx
	@echo; echo "== verify (a tiny DenseNet-BC: the verifier names how it differs from the closest paper architecture)"
	@$(BIN) verify fixtures/tv-tiny-legacy-opset17.onnx; test $$? -le 1
	@echo; echo "== run"; $(BIN) run fixtures/tv-tiny-legacy-opset17.onnx --input fixtures/input-64.npy --output /tmp/densekit-demo-out.npy --repeat 20
	@echo; echo "== diff: the Keras .h5 against its tf2onnx export, layer by layer"
	@$(BIN) diff fixtures/keras2-tiny.h5 fixtures/keras2-tiny-tf2onnx.onnx --input fixtures/input-64-nhwc.npy --report /tmp/densekit-demo-diff.html
	@echo "(HTML report: /tmp/densekit-demo-diff.html)"
	@echo; echo "== diff: float32 against float16 weights (diverges; exit 1 is the expected verdict)"
	@$(BIN) diff fixtures/tv-tiny-legacy-opset17.onnx fixtures/tv-tiny-legacy-opset17-fp16.onnx --input fixtures/input-64.npy | head -4; true
	@echo; echo "== heads people ship: CheXNet's 14-way sigmoid, and a Keras backbone used as a feature extractor"
	@$(BIN) inspect fixtures/tv-tiny-sigmoid14-legacy-opset17.onnx | grep '^head'
	@$(BIN) run fixtures/keras3-tiny-none.keras --input fixtures/input-64-nhwc.npy --output /tmp/densekit-demo-features.npy
	@echo; echo "== convert to .dnk (validated: bit-identical output), then run the .dnk"
	@$(BIN) convert fixtures/keras3-tiny.keras -o /tmp/densekit-demo.dnk --accept-deviations
	@$(BIN) run /tmp/densekit-demo.dnk --input fixtures/input-64-nhwc.npy --output /tmp/densekit-demo-dnk.npy
	@echo; echo "== convert a torchvision checkpoint to Keras 3 weights and to ONNX (each says what the target changes)"
	@$(BIN) convert fixtures/tv-tiny.pth -o /tmp/densekit-demo.weights.h5 --accept-deviations
	@$(BIN) convert fixtures/tv-tiny.pth -o /tmp/densekit-demo.onnx --accept-deviations --fold-bn
	@echo; echo "== images: torchvision's preprocessing of a folder, then a dataset diff of the checkpoint against its ONNX export"
	@$(BIN) preprocess fixtures/demo-images -o /tmp/densekit-demo-images.npy --preset torchvision --size 64
	@$(BIN) diff fixtures/tv-tiny.pth fixtures/tv-tiny-legacy-opset17.onnx --images fixtures/demo-images --preset torchvision --size 64 | head -8

proto:
	cd schemas && protoc-c --c_out=../Sources/ONNXProto onnx.proto
	mv Sources/ONNXProto/onnx.pb-c.h Sources/ONNXProto/include/onnx.pb-c.h

# TensorFlow Lite's accessors and verifier, generated once from schemas/tflite/schema.fbs and committed
# (flatc 2.0.8, Debian's flatbuffers-compiler; --gen-mutable for the tests' in-place edits).
tflite-schema:
	flatc --cpp --gen-mutable -o Sources/TFLiteSchema/generated schemas/tflite/schema.fbs

# Each venv's stamp names its package list, so a changed pin installs again into the cached venv.
TORCH_READY := $(VENV_TORCH)/.ready-$(shell echo '$(TORCH_PKGS)' | cksum | cut -d' ' -f1)
TF_READY    := $(VENV_TF)/.ready-$(shell echo '$(TF_PKGS)' | cksum | cut -d' ' -f1)
O2T_READY   := $(VENV_O2T)/.ready-$(shell echo '$(O2T_PKGS)' | cksum | cut -d' ' -f1)

$(TORCH_READY):
	[ -x $(VENV_TORCH)/bin/python ] || $(PYTHON) -m venv $(VENV_TORCH)
	$(VENV_TORCH)/bin/pip install -q --upgrade pip
	$(VENV_TORCH)/bin/pip install -q $(TORCH_PKGS)
	touch $@

$(TF_READY):
	[ -x $(VENV_TF)/bin/python ] || $(PYTHON) -m venv $(VENV_TF)
	$(VENV_TF)/bin/pip install -q --upgrade pip
	$(VENV_TF)/bin/pip install -q $(TF_PKGS)
	touch $@

$(O2T_READY):
	[ -x $(VENV_O2T)/bin/python ] || $(PYTHON) -m venv $(VENV_O2T)
	$(VENV_O2T)/bin/pip install -q --upgrade pip
	$(VENV_O2T)/bin/pip install -q $(O2T_PKGS)
	touch $@

venvs: $(TORCH_READY) $(TF_READY)

# Tiny committed fixtures (kilobytes) with their reference outputs. Never run by the tests.
fixtures: venvs fixtures-images $(O2T_READY)
	$(VENV_TORCH)/bin/python scripts/make_image_fixtures.py $$(ls $(CACHE)/wheels/scikit_image-0.25.2-*.whl | head -1) --demo fixtures/demo-images
	cd fixtures && $(VENV_TORCH)/bin/python ../scripts/make_torch_fixtures.py tiny .
	cd fixtures && $(VENV_TF)/bin/python ../scripts/make_keras_fixtures.py tiny .
	cd fixtures && $(VENV_O2T)/bin/python ../scripts/make_onnx2tf_fixtures.py .

# Full-size DenseNet-121 files of every variant (not committed; ~400 MB).
fixtures-full: $(FULL)/.stamp

# The torch and Keras scripts write disjoint files: they run side by side (docs/performance.md, CI time), and
# either failing fails the target.
$(FULL)/.stamp: scripts/make_torch_fixtures.py scripts/make_keras_fixtures.py scripts/fixture_meta.py | venvs
	mkdir -p $(FULL)
	$(VENV_TORCH)/bin/python scripts/make_torch_fixtures.py full $(FULL) & torch=$$!; \
	  $(VENV_TF)/bin/python scripts/make_keras_fixtures.py full $(FULL); keras=$$?; \
	  wait $$torch && [ $$keras -eq 0 ]
	touch $@

# Photographs from scikit-image's wheel (its sample data; only the wheel is fetched, nothing installed)
# and variants in every encoding the decoders handle, made with Pillow and pypng (not committed).
fixtures-images: $(IMAGES)/.stamp

$(IMAGES)/.stamp: scripts/make_image_fixtures.py | venvs
	mkdir -p $(CACHE)/wheels $(IMAGES)
	ls $(CACHE)/wheels/scikit_image-0.25.2-*.whl >/dev/null 2>&1 || \
	  $(VENV_TORCH)/bin/pip download -q --no-deps --only-binary=:all: -d $(CACHE)/wheels $(SKIMAGE)
	$(VENV_TORCH)/bin/python scripts/make_image_fixtures.py $$(ls $(CACHE)/wheels/scikit_image-0.25.2-*.whl | head -1) $(IMAGES)
	touch $@

bench: build fixtures-full
	$(VENV_TORCH)/bin/python scripts/bench.py $(BIN) $(FULL)

clean:
	rm -rf .build .build-asan .build-fuzz Fuzz/.build

# libFuzzer targets (Fuzz/), seeded with the fixtures; each runs FUZZ_SECONDS and any crash fails.
# Crashers are written to fuzz-findings/ (ignored by git) for the corrupt-file suite.
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := cd Fuzz && $(SWIFT) build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld \
  -Xcxx -fsanitize=fuzzer-no-link,address
.PHONY: fuzz fuzz-build fuzz-corpus
fuzz-build: deps
	$(FUZZ_BUILD)

fuzz-corpus: build fixtures-images
	mkdir -p .build-fuzz/onnx .build-fuzz/hdf5 .build-fuzz/dnk .build-fuzz/npy .build-fuzz/safetensors .build-fuzz/pth .build-fuzz/moduletree .build-fuzz/tflite .build-fuzz/jpeg .build-fuzz/png fuzz-findings
	cp fixtures/*.safetensors .build-fuzz/safetensors/
	cp fixtures/*.pth fixtures/*.pth.tar .build-fuzz/pth/
	cp fixtures/*-module*.pth fixtures/*.pt fixtures/*.ts .build-fuzz/moduletree/
	cp fixtures/*.onnx .build-fuzz/onnx/
	cp fixtures/*.tflite .build-fuzz/tflite/
	cp fixtures/*.h5 fixtures/*.keras .build-fuzz/hdf5/
	cp fixtures/*.npy .build-fuzz/npy/
	# Small images only (a few kilobytes run fast): the 30x20 variant and re-encodings of it.
	cp $(IMAGES)/variants/chelsea-30x20.png $(IMAGES)/variants/camera-1bit.png .build-fuzz/png/
	$(VENV_TORCH)/bin/python -c "from PIL import Image; im = Image.open('$(IMAGES)/variants/chelsea-30x20.png'); \
	  im.save('.build-fuzz/jpeg/small.jpg'); im.save('.build-fuzz/jpeg/small-progressive.jpg', progressive=True); \
	  im.convert('L').save('.build-fuzz/jpeg/small-gray.jpg'); im.convert('CMYK').save('.build-fuzz/jpeg/small-cmyk.jpg'); \
	  im.convert('P').save('.build-fuzz/png/small-palette.png'); im.convert('LA').save('.build-fuzz/png/small-la.png')"
	for f in tv-tiny-legacy-opset17.onnx cifar-plain-tiny-legacy-opset17.onnx keras3-tiny.keras keras3-tiny-rescaling.keras \
	  tv-tiny-qdq-s8-perchannel.onnx keras2-tiny-rescaling-tf2onnx-qoperator-u8.onnx keras2-tiny-int8.tflite \
	  keras2-tiny-normalization-adapted-int8.tflite; do \
	  $(BIN) convert fixtures/$$f -o .build-fuzz/dnk/$$f.dnk --accept-deviations >/dev/null; done
	# Files DenseKit writes (their head records included) seed the readers of those formats too.
	for f in tv-tiny-mlp-dynamo-opset18.onnx keras3-tiny-max.keras; do \
	  $(BIN) convert fixtures/$$f -o .build-fuzz/safetensors/$$f.safetensors --accept-deviations >/dev/null; \
	  $(BIN) convert fixtures/$$f -o .build-fuzz/hdf5/$$f.h5 --accept-deviations >/dev/null; \
	  $(BIN) convert fixtures/$$f -o .build-fuzz/hdf5/$$f.weights.h5 --accept-deviations >/dev/null; \
	  $(BIN) convert fixtures/$$f -o .build-fuzz/onnx/$$f.onnx --accept-deviations >/dev/null; \
	  $(BIN) convert fixtures/$$f -o .build-fuzz/tflite/$$f.tflite --accept-deviations >/dev/null; done
	# timm's deep stem and blur pool as DenseKit writes them (ONNX's reflection Pad and depthwise Conv, TFLite's
	# MIRROR_PAD and DEPTHWISE_CONV_2D, .dnk 4.0, safetensors recording the blur).
	for t in onnx dnk safetensors tflite; do \
	  $(BIN) convert fixtures/timm-tiny-blur-module.pth -o .build-fuzz/$$t/timm-tiny-blur.$$t --accept-deviations >/dev/null; done
	# The hostile files issue 42 found (nesting, PNG chunks, npy headers, a deflated checkpoint).
	$(VENV_TORCH)/bin/python scripts/make_hostile_corpus.py fixtures .build-fuzz

# libhdf5 (C that DenseKit cannot fix) crashes, hangs and leaks on some corrupt files, so every command
# reads HDF5 in an isolated child process. The HDF5 target therefore keeps going past failures, and
# scripts/check-hdf5-findings.sh then fails the run unless each saved input fails inside libhdf5 (not
# in DenseKit's code) and `densekit inspect` ends on it with exit 2 and one line.
fuzz: fuzz-build fuzz-corpus
	for t in ONNX DNK NPY Safetensors PTH ModuleTree TFLite JPEG PNG; do \
	  l=$$(echo $$t | tr A-Z a-z); \
	  Fuzz/.build/release/Fuzz$$t .build-fuzz/$$l -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 \
	    -artifact_prefix=fuzz-findings/$$l- -print_final_stats=1 || exit 1; \
	done
	touch .build-fuzz/hdf5-started
	Fuzz/.build/release/FuzzHDF5 .build-fuzz/hdf5 -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=4096 -timeout=10 \
	  -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -artifact_prefix=fuzz-findings/hdf5- -print_final_stats=1 \
	  || echo "the HDF5 target saved failing inputs; checking each"
	scripts/check-hdf5-findings.sh $(BIN) Fuzz/.build/release/FuzzHDF5 \
	  $$(find fuzz-findings -name 'hdf5-*' -newer .build-fuzz/hdf5-started)

# The whole test suite under AddressSanitizer, C code (libhdf5, protobuf-c) reached from it included.
# Leak checking is off: Swift's runtime and Foundation leave allocations alive in every process that
# ends through exit(), which LeakSanitizer reports as leaks. abort_on_error turns a sanitizer report in
# the isolated HDF5 reader into a signal, which the parent reports like any other crash there.
test-asan: deps venvs fixtures-images $(if $(CI),fixtures-full)
	DENSEKIT_CACHE=$(CACHE) ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 $(SWIFT) test $(SWIFT_FLAGS) --sanitize=address --scratch-path .build-asan
