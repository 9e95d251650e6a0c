"""python -m workers: run the arq worker with graceful shutdown on SIGINT/SIGTERM.
In production it first refuses unsafe settings (app/startup.py) with one message."""

from arq import run_worker

from app.settings import get_settings
from app.startup import refuse_unsafe_production

if __name__ == "__main__":
    refuse_unsafe_production(get_settings(), "worker")
    from workers.main import WorkerSettings

    run_worker(WorkerSettings)  # type: ignore[arg-type]
