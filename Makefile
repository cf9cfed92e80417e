# Thin wrappers over the commands in the README.
.PHONY: run test fmt lint ci

run:
	cargo run --release -- serve --config config/switchyard.yaml

test:
	scripts/test

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

ci:
	bash .ci/run
