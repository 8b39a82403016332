# Shorthands for the README's commands (scripts/dev.sh works without make too).
.PHONY: run test bench
run:
	scripts/dev.sh run
test:
	scripts/dev.sh test
bench:
	scripts/dev.sh bench
