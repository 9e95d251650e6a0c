"""python -m workers: run the arq worker with graceful shutdown on SIGINT/SIGTERM."""

from arq import run_worker

from workers.main import WorkerSettings

if __name__ == "__main__":
    run_worker(WorkerSettings)  # type: ignore[arg-type]
