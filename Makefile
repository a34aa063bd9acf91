# The two set-up commands: `make demo` runs the main job on the built-in reference stack,
# `make test` runs the tests. Both install what they need into .venv first.
.PHONY: demo test venv lint clean-demo

venv:
	bash scripts/venv.sh

demo: venv
	bash scripts/demo.sh

clean-demo:
	rm -rf .demo

test: venv
	bash scripts/test.sh

lint: venv
	.venv/bin/ruff format --check afasa_ops tests bench
	.venv/bin/ruff check afasa_ops tests bench
	.venv/bin/mypy
