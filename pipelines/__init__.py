"""Prefect orchestration of fer-data: curation and validation flows, and their scheduled deployments.

    pipelines.curate_flow    the `curate` flow: one source, shards as parallel tasks
    pipelines.validate_flow  the `validate` flow (Great Expectations) and the `fer-data-pipeline` flow
    pipelines.runners        task runner chosen in params.yaml (process | dask | thread) and the API server
    pipelines.serve          deployments with cron schedules from params.yaml (`fer-data serve`)
    pipelines.cli            `fer-data flow ...`, `serve`, `run-demo` (found by fer_data.cli through the
                             `fer_data.commands` entry points; the library never imports this package)

The flows reuse the engine (fer_data.curate) and the validation suites (fer_data.validate);
this package only adds orchestration. Importing it sets the project's Prefect environment
defaults (pipelines.env) before anything imports prefect.
"""

from pipelines.env import apply_defaults

apply_defaults()
