export PATH := $(HOME)/.local/bin:$(PATH)

.PHONY: run test bootstrap openapi lint bench

run:            ## run the whole system: API + worker (HOST, PORT from the environment)
	scripts/run.sh

test: bootstrap ## lint, type-check, then run every test against the machine's PostgreSQL+PostGIS and Redis
	UV_PYTHON_DOWNLOADS=never uv run --frozen ruff check app workers tests bench
	UV_PYTHON_DOWNLOADS=never uv run --frozen mypy
	UV_PYTHON_DOWNLOADS=never uv run --frozen pytest

bootstrap:
	scripts/bootstrap.sh

openapi:        ## regenerate openapi/openapi.json
	UV_PYTHON_DOWNLOADS=never uv run --frozen python -m app.cli openapi > openapi/openapi.json

lint:           ## ruff, and mypy over app/ and workers/ ([tool.mypy] in pyproject.toml)
	UV_PYTHON_DOWNLOADS=never uv run --frozen ruff check app workers tests bench
	UV_PYTHON_DOWNLOADS=never uv run --frozen mypy

bench:          ## benchmark: starts the app and the framework floor, prints a table
	UV_PYTHON_DOWNLOADS=never uv run --frozen python -m bench.run --start-app
