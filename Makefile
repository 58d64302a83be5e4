# Root build of the alknet workspace. `go test ./...` does not span a
# workspace, so every target walks the modules listed in go.work.
MODULES := $(shell go list -m -f '{{.Dir}}' 2>/dev/null)
GOFLAGS_TEST ?= -race -count=1 -timeout 15m

.PHONY: test vet build fuzz bench tidy soak

test: vet
	@set -e; for m in $(MODULES); do \
		echo "== go test $$m"; \
		(cd $$m && go test $(GOFLAGS_TEST) ./...); \
	done

vet:
	@set -e; for m in $(MODULES); do \
		echo "== go vet $$m"; \
		(cd $$m && go vet ./...); \
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

tidy:
	@set -e; for m in $(MODULES); do (cd $$m && go mod tidy); done
