"""The infra stage: everything one environment's target account gets from the infra repository."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from datalake_config import LakeConfig, names_for, tags
from datalake_infra.catalog.catalog_stack import CatalogStack
from datalake_infra.network.network_stack import NetworkStack
from datalake_infra.storage.storage_stack import StorageStack
from datalake_infra.verify.verify_stack import VerifyStack
from lake_pipelines.role_boundary import bound_stage_roles

REPOSITORY = "infra"


class InfraStage(cdk.Stage):
    """Storage, network, catalog and verify stacks of one environment, in its own account and region."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: LakeConfig, env_name: str, **kwargs: Any
    ) -> None:
        target = config.env(env_name)
        super().__init__(
            scope, construct_id, env=cdk.Environment(account=target.account, region=target.region), **kwargs
        )
        bound_stage_roles(self, config)  # every role the stage creates stays inside the lake's boundary
        names = names_for(config, env_name)

        def stack_props(component: str) -> dict[str, Any]:
            return {
                "config": config,
                "env_name": env_name,
                "stack_name": names.stack_name(REPOSITORY, component),
                "description": f"{config.prefix} {env_name}: data lake {component} (infra repository)",
                "tags": tags(config, env_name, REPOSITORY),
            }

        self.storage = StorageStack(self, "Storage", **stack_props("storage"))
        # the other stacks read storage's values through the SSM contract, so it must be deployed first
        self.network = NetworkStack(self, "Network", **stack_props("network"))
        self.network.add_stack_dependency(self.storage, "the flow logs are encrypted with the data key")
        self.catalog = CatalogStack(self, "Catalog", **stack_props("catalog"))
        self.catalog.add_stack_dependency(self.storage, "databases are located in the zone buckets")
        self.verify = VerifyStack(self, "Verify", **stack_props("verify"))
        for stack in (self.storage, self.network, self.catalog):
            self.verify.add_stack_dependency(stack, "the verify role is scoped to the resources the contract names")
