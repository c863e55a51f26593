"""The infra app: one self-mutating branch pipeline per environment, each deploying that environment's stage."""

from datalake_config import PULLED_CONFIG_PATH, load, names_for
from datalake_infra.stage import InfraStage
from lake_pipelines.checks import enable_nag, lake_app
from lake_pipelines.pipeline import BranchPipelineStack

app = lake_app()
# the pipeline's synth step passes `-c config=.lake/config.json`, pulled from the global-config secret
config = load(app.node.try_get_context("config") or PULLED_CONFIG_PATH)
for env_name in config.environment_names:
    BranchPipelineStack(
        app,
        names_for(config, env_name).pipeline_stack_name("infra"),
        config=config,
        repository="infra",
        environment=env_name,
        stage_factory=lambda scope, construct_id, target: InfraStage(
            scope, construct_id, config=config, env_name=target
        ),
        verify_module="datalake_infra.smoke_check",
    )
enable_nag(app)
app.synth()
