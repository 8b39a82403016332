# Shorthands for the README's two commands (scripts/dev.sh works without make too).
.PHONY: run test
run:
	scripts/dev.sh run
test:
	scripts/dev.sh test
