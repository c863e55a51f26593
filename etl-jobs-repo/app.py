"""The ETL app: one self-mutating branch pipeline per environment, each deploying that environment's job groups."""

from pathlib import Path

from datalake_config import PULLED_CONFIG_PATH, load, names_for
from etl_jobs.spec import JOBS_DIR
from etl_jobs.stage import EtlStage
from lake_pipelines.checks import enable_nag, lake_app
from lake_pipelines.pipeline import BranchPipelineStack

app = lake_app()
# the pipeline's synth step passes `-c config=.lake/config.json`, pulled from the global-config secret
config = load(app.node.try_get_context("config") or PULLED_CONFIG_PATH)
# `-c jobs_dir=...` points the app at other job groups (the benchmark's generated ones); default: jobs/
jobs_dir = Path(app.node.try_get_context("jobs_dir") or JOBS_DIR)
for env_name in config.environment_names:
    BranchPipelineStack(
        app,
        names_for(config, env_name).pipeline_stack_name("etl"),
        config=config,
        repository="etl",
        environment=env_name,
        stage_factory=lambda scope, construct_id, target: EtlStage(
            scope, construct_id, config=config, env_name=target, jobs_dir=jobs_dir
        ),
        verify_module="etl_jobs.integration_check",
    )
enable_nag(app)
app.synth()
