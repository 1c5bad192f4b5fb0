# CodeRL in Swift. `make setup` prepares a fresh Debian machine; `make test` runs the tests.
SWIFT ?= swift
# lmdb-utils (mdb_stat, mdb_dump, mdb_copy) is used by the tests and for inspecting ledgers;
# bubblewrap and python3 run generated programs (python3-numpy so programs may import numpy).
DEBS := libopenblas-dev libzmq3-dev liblmdb-dev lmdb-utils zlib1g-dev bubblewrap python3 python3-numpy iproute2
PREFIX ?= /usr/local
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian's OpenBLAS picks AVX2 kernels on AVX-512 CPUs; SkylakeX's are ~1.8x faster for sgemm.
# (The coderl binary sets this itself; tests and benchmarks started from here get it too.)
ifneq ($(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo yes),)
export OPENBLAS_CORETYPE ?= SkylakeX
endif

.PHONY: setup deps model build test test-fast test-integration bench demo docker-check install clean peers-venv bench-peers

setup: deps model build

deps:
	@if ! dpkg -s $(DEBS) >/dev/null 2>&1; then \
		echo "installing $(DEBS)"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEBS); \
	fi

model:
	scripts/fetch-model.sh

build:
	$(SWIFT) build -c release

# Two tiers (`make test` runs both, as CI does). The integration tier starts processes and
# pipelines, runs hostile programs in the sandbox, loads SmolLM2, builds Docker files and
# renders in Chromium; the fast tier is everything else, for the inner loop (Tests/README.md).
INTEGRATION := \.(FaultTests|SmolLM2ReplayTests|CLITests|AgreementTests|PipelineRunTests|HostileProgramTests|HostileCatalogueTests|ReferenceFixtureTests|EvaluationTests|StopConditionTests|DockerTests|CrashSafetyTests|BF16InferenceTests|ReportTests|PyTorchScriptTests|RemoteExecutorTests|WorkerProtocolTests|DescriptorCLITests|SandboxModeTests|HelpTests|TelemetryTests|ExportTests|FormatTests|VerdictFidelityTests|DescriptorTests|LedgerVerifyTests|SamplerPoolTests)/

# PyTorch and transformers (CPU) in .build-peers/venv, for the fixture scripts' tests
# (PyTorchScriptTests) and the peer benchmarks. The CPU wheel comes from pip's find-links
# where the machine has one (this project's machines: /opt/wheels); PyPI's own torch wheel
# pulls several GB of CUDA libraries.
PEERS_PY := torch==2.13.0+cpu transformers==5.25.0 accelerate==1.16.0 safetensors==0.8.0 numpy==2.4.6 gguf==0.19.0
peers-venv:
	test -x .build-peers/venv/bin/python || python3 -m venv .build-peers/venv
	.build-peers/venv/bin/pip install -q $(PEERS_PY)

test:
	$(SWIFT) test -c release --disable-swift-testing

test-fast:
	$(SWIFT) test -c release --disable-swift-testing --parallel --skip '$(INTEGRATION)'

test-integration:
	$(SWIFT) test -c release --disable-swift-testing --filter '$(INTEGRATION)'

bench: build
	.build/release/coderl bench generate
	if grep -qw avx512_bf16 /proc/cpuinfo; then .build/release/coderl bench generate --precision bf16; fi

# Our speed beside llama.cpp's and PyTorch's, measured in the same run on this machine: builds
# the peers once into .build-peers (scripts/build-peers.sh, about 6 minutes on 2 cores), then
# `coderl bench peers` interleaves the workloads and prints the ratios with the CPU model.
bench-peers: build
	scripts/build-peers.sh
	.build/release/coderl bench peers

# A short real pipeline run on SmolLM2-135M-Instruct and the package's own problems; ends with
# the held-out pass rate before and after. Starts afresh in $(DEMO_DIR) each time.
DEMO_DIR ?= runs/demo
demo: setup
	rm -rf $(DEMO_DIR)
	.build/release/coderl run Pipelines/demo.yaml --set run.dir=$(DEMO_DIR)

# Builds the Docker images with podman and runs a short compose pipeline (Docker/README.md).
# Where Docker Hub is unreachable, Docker/local-bases.sh first builds stand-in base images.
docker-check:
	command -v podman >/dev/null && command -v docker-compose >/dev/null || $(SUDO) apt-get install -y podman runc docker-compose
	podman image exists docker.io/library/swift:6.3-bookworm || \
	  { podman pull docker.io/library/swift:6.3-bookworm && podman pull docker.io/library/swift:6.3-bookworm-slim; } || \
	  { command -v debootstrap >/dev/null || $(SUDO) apt-get install -y debootstrap; Docker/local-bases.sh; }
	Docker/check.sh

install: build
	for tool in coderl coderl-executor coderl-param-store coderl-sampler coderl-critic-labeler coderl-learner; do install -m 755 .build/release/$$tool $(PREFIX)/bin/$$tool; done
	rm -rf $(PREFIX)/bin/CodeRL_CodeRL.resources && cp -r .build/release/CodeRL_CodeRL.resources $(PREFIX)/bin/

clean:
	rm -rf .build
