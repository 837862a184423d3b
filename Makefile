# The two commands of the README, and a few conveniences.
.PHONY: run test lint format migrate

run:  ## set up and run the service with demo data on http://127.0.0.1:8000
	bash scripts/run.sh

test:  ## set up and run the whole test suite (PostgreSQL and Redis on loopback)
	bash scripts/test.sh

lint:
	uv run ruff check .
	uv run ruff format --check .
	uv run lint-imports
	uv run mypy

format:
	uv run ruff check --fix .
	uv run ruff format .

migrate:
	uv run python manage.py migrate
