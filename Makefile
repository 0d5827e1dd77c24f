# GreenBoost Container Toolkit. `make demo` runs the main job, `make test` all tests.
GO       ?= go
VERSION  ?= 0.1.0
COMMIT   := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
PKG      := github.com/greenboost/greenboost-container-toolkit
LDFLAGS  := -s -w -X $(PKG)/internal/version.Version=$(VERSION) -X $(PKG)/internal/version.Commit=$(COMMIT)
BINARIES := greenboost-runtime greenboost-hook greenboost-ctk containerd-shim-greenboost-v2
KDIR     ?= /lib/modules/$(shell uname -r)/build
# The compile targets of the module's build matrix (Debian 12's 6.1 and 6.12 cloud
# headers), globbed when the target runs: `make test` installs them first.
KDIRS_GLOB ?= /usr/src/linux-headers-6.1.*-cloud-amd64 /usr/src/linux-headers-6.12.*-cloud-amd64
DIST     ?= dist
NFPM     ?= github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2

export GOFLAGS := -buildvcs=false

.PHONY: all build deps lint module module-matrix module-dkms package test test-unit test-e2e test-vm demo bench fuzz clean

all: build

deps:
	@test/deps.sh

build:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ $(addprefix ./cmd/,$(BINARIES))

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$out" || { echo "gofmt needed:"; echo "$$out"; exit 1; }

module:
	$(MAKE) -C kmod/module KDIR=$(KDIR)

# Builds the module against every header tree in KDIRS, warnings as errors.
module-matrix:
	@set -e; kdirs=$$(ls -d $(KDIRS_GLOB) 2>/dev/null || true); \
	test -n "$$kdirs" || { echo "module-matrix: no kernel headers in $(KDIRS_GLOB); run make deps"; exit 1; }; \
	for k in $$kdirs; do \
		echo "== module against $$k"; \
		$(MAKE) -s -C kmod/module KDIR=$$k clean >/dev/null; \
		$(MAKE) -C kmod/module KDIR=$$k KCFLAGS=-Werror; \
		$(MAKE) -s -C kmod/module KDIR=$$k clean >/dev/null; \
	done

# Builds the module the way the package's DKMS install does (kmod/module/dkms.conf),
# for every header tree in KDIRS, in throwaway DKMS trees and unsigned (no MOK key
# is made on this machine), and checks the vermagic of each (6.12 compresses it: .ko.xz).
module-dkms:
	@set -e; kdirs=$$(ls -d $(KDIRS_GLOB) 2>/dev/null || true); \
	test -n "$$kdirs" || { echo "module-dkms: no kernel headers in $(KDIRS_GLOB); run make deps"; exit 1; }; \
	command -v dkms >/dev/null || { echo "module-dkms: dkms not found; run make deps"; exit 1; }; \
	grep -qx 'PACKAGE_VERSION="$(VERSION)"' kmod/module/dkms.conf || \
		{ echo "module-dkms: kmod/module/dkms.conf's PACKAGE_VERSION is not $(VERSION); the package installs the source as /usr/src/greenboost-$(VERSION)"; exit 1; }; \
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	for k in $$kdirs; do \
		rel=$${k#/usr/src/linux-headers-}; \
		echo "== dkms build against $$rel"; \
		mkdir -p "$$tmp/$$rel/tree" "$$tmp/$$rel/src" "$$tmp/$$rel/inst"; \
		sign_file=/nonexistent dkms --dkmstree "$$tmp/$$rel/tree" --sourcetree "$$tmp/$$rel/src" \
			--installtree "$$tmp/$$rel/inst" build $(CURDIR)/kmod/module -k "$$rel" >"$$tmp/log" 2>&1 || \
			{ cat "$$tmp/log"; exit 1; }; \
		ko=$$(ls "$$tmp/$$rel"/tree/greenboost/*/"$$rel"/x86_64/module/greenboost.ko*); \
		magic=$$(modinfo -F vermagic "$$ko"); \
		case "$$magic" in "$$rel "*) echo "   $$ko: vermagic $$magic";; \
		*) echo "module-dkms: $$ko has vermagic '$$magic', want $$rel"; exit 1;; esac; \
	done

# The deb and rpm (packaging/nfpm.yaml) in DIST. The version is written out in
# nfpm.yaml, its scripts and dkms.conf (nfpm expands no variables in paths).
package: build
	@# Every place the version is written out (nfpm expands no variables in paths):
	@# a partial bump would install a module DKMS cannot find, or report another version.
	@bad=; \
	grep -qx 'version: "$(VERSION)"' packaging/nfpm.yaml || bad="$$bad packaging/nfpm.yaml(version:)"; \
	src=$$(grep -o 'dst: /usr/src/greenboost-[^/ ]*' packaging/nfpm.yaml | sort -u); \
	[ "$$src" = "dst: /usr/src/greenboost-$(VERSION)" ] || bad="$$bad packaging/nfpm.yaml(/usr/src/greenboost-VERSION)"; \
	for f in packaging/scripts/postinst packaging/scripts/prerm; do \
		grep -qx 'version=$(VERSION) .*' $$f || bad="$$bad $$f(version=)"; \
	done; \
	grep -qx 'PACKAGE_VERSION="$(VERSION)"' kmod/module/dkms.conf || bad="$$bad kmod/module/dkms.conf(PACKAGE_VERSION)"; \
	grep -Eqx '[#]define[[:space:]]+GB_MODULE_VERSION[[:space:]]+"$(VERSION)"' kmod/module/greenboost.c || bad="$$bad kmod/module/greenboost.c(GB_MODULE_VERSION)"; \
	[ -z "$$bad" ] || { echo "package: VERSION $(VERSION) is not what these say:$$bad; change them all together"; exit 1; }
	@mkdir -p $(DIST)
	@for p in deb rpm; do $(GO) run $(NFPM) package -f packaging/nfpm.yaml -p $$p -t $(DIST)/ || exit 1; done

test: deps build lint test-unit module-matrix module-dkms test-e2e test-vm

test-unit:
	$(GO) test -race -count=1 ./...

test-e2e: build
	$(GO) test -tags e2e -count=1 -v -timeout 30m -skip TestBench ./test/e2e/...

test-vm:
	$(GO) test -tags vm -count=1 -v -timeout 40m -skip 'TestDemo|TestBench' ./test/vm/...

demo: deps build
	$(GO) test -tags vm -count=1 -v -timeout 20m -run TestDemo ./test/vm

bench: deps build
	$(GO) test -tags e2e -count=1 -v -timeout 20m -run TestBench ./test/e2e/...
	$(GO) test -tags vm -count=1 -v -timeout 20m -run TestBench ./test/vm/...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzParseSize -fuzztime 30s ./internal/config/
	$(GO) test -run '^$$' -fuzz FuzzKeyCase -fuzztime 30s ./internal/config/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s ./internal/request/
	$(GO) test -run '^$$' -fuzz FuzzLoadSpec -fuzztime 30s ./shim/
	$(GO) test -run '^$$' -fuzz FuzzEdits -fuzztime 30s ./shim/
	$(GO) test -run '^$$' -fuzz FuzzParseArgs -fuzztime 30s ./shim/
	$(GO) test -run '^$$' -fuzz FuzzSplitJSON -fuzztime 30s ./shim/
	$(GO) test -run '^$$' -fuzz FuzzReadState -fuzztime 30s ./hook/
	$(GO) test -run '^$$' -fuzz FuzzReadRecord -fuzztime 30s ./hook/

clean:
	rm -rf bin $(DIST)
	-$(MAKE) -s -C kmod/module clean
