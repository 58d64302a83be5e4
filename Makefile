# Root build of the alknet workspace. `go test ./...` does not span a
# workspace, so every target walks the modules listed in go.work.
MODULES := $(shell go list -m -f '{{.Dir}}' 2>/dev/null)
GOFLAGS_TEST ?= -race -count=1 -timeout 20m

.PHONY: test vet build fuzz bench tidy release-check release soak

# One go test over every module's packages, so that packages of different
# modules run side by side (go test -p); the workspace resolves them all.
test: vet
	go test $(GOFLAGS_TEST) $(addsuffix /...,$(MODULES))

vet:
	@set -e; for m in $(MODULES); do \
		echo "== go vet $$m"; \
		(cd $$m && go vet ./...); \
	done
	@# Modules outside go.work (own dependencies): vet them so they still build.
	@for m in bench/callbench bench/dnsbench tools/release; do \
		echo "== go vet $$m (GOWORK=off)"; \
		(cd $$m && GOWORK=off go vet ./...) || exit 1; \
	done

build:
	go build -o bin/alknet ./cmd/alknet

# Short fuzzing pass over every fuzz target (FUZZTIME per target).
FUZZTIME ?= 10s
fuzz:
	@set -e; for m in $(MODULES); do \
		(cd $$m && for pkg in $$(go list ./...); do \
			for f in $$(go test -list 'Fuzz.*' $$pkg | grep '^Fuzz'); do \
				echo "== fuzz $$pkg $$f"; go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
			done; done); \
	done

bench:
	./bench/run.sh

# Load, fault and bad-input suite on loopback (not part of `test`): builds
# the alknet binary, runs nodes in temporary directories and prints one row
# per check. Bounded by its knobs (SOAK_* and FUZZTIME, see soak/README.md);
# the defaults take about ten minutes on two cores.
soak:
	go run ./soak/cmd/soak

# go mod tidy in every module; sibling modules come from a local module proxy
# built from this tree, since go mod tidy ignores go.work.
tidy:
	./tools/release/tidy.sh

# Proves that a program outside this repository can go get every module and
# go install cmd/alknet at a version (a local module proxy, loopback only).
release-check:
	./tools/release/check.sh

# Prepares tags <module>/$(VERSION) in dependency order; pushes nothing.
release:
	@test -n "$(VERSION)" || { echo "usage: make release VERSION=v0.x.y" >&2; exit 2; }
	./tools/release/release.sh $(VERSION)
