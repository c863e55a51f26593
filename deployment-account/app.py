"""The deployment-account app: one stack holding what every pipeline shares."""

import aws_cdk as cdk

from datalake_config import PULLED_CONFIG_PATH, lake_names, load
from lake_pipelines.checks import enable_nag
from lakeops.deployment_stack import DeploymentAccountStack

app = cdk.App()
config = load(app.node.try_get_context("config") or PULLED_CONFIG_PATH)
DeploymentAccountStack(app, lake_names(config).deployment_stack_name, config=config)
enable_nag(app)
app.synth()
