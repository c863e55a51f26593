"""The ETL app in one environment: a shared stack plus one stack per job group (more for very large groups)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from datalake_config import LakeConfig, names_for, tags
from etl_jobs.group_stack import EtlGroupStack
from etl_jobs.layout import check_names, plan_parts
from etl_jobs.library import LIBRARY_DIR, build_library_zip
from etl_jobs.shared_stack import EtlSharedStack
from etl_jobs.spec import JOBS_DIR, SpecError, discover
from lake_pipelines.role_boundary import bound_stage_roles


class EtlStage(cdk.Stage):
    """Composes the ETL stacks of `env_name` for the groups found in `jobs_dir` (or only the groups named in
    `only`, with the shared stack they need: what `etl-jobs check <group>` synthesizes)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: LakeConfig,
        env_name: str,
        jobs_dir: Path = JOBS_DIR,
        library_dir: Path = LIBRARY_DIR,
        only: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        environment = config.env(env_name)
        super().__init__(
            scope,
            construct_id,
            env=cdk.Environment(account=environment.account, region=environment.region),
            **kwargs,
        )
        # Merged statements keep a part's state machine role (one Glue statement per job otherwise) in one
        # inline policy: CDK would move the excess into overflow policies, which grow the resource count.
        self.node.set_context("@aws-cdk/aws-iam:minimizePolicies", True)
        bound_stage_roles(self, config)  # every role the stage creates stays inside the lake's boundary
        names = names_for(config, env_name)
        discovered = discover(jobs_dir, env_name, config.environment_names)
        # Physical names must not clash with any group that deploys beside these, built here or not.
        check_names(discovered, names)
        unknown = sorted(set(only or ()) - {group.name for group in discovered})
        if unknown:
            raise SpecError(f"{jobs_dir}: no job group {', '.join(unknown)}")
        self.groups = [group for group in discovered if only is None or group.name in only]
        for key, value in tags(config, env_name, "etl").items():
            cdk.Tags.of(self).add(key, value)
        # Built inside this stage's assembly folder: synth reads local files only, no Docker.
        self.library_zip = build_library_zip(library_dir, Path(self.outdir) / "build")

        self.shared = EtlSharedStack(
            self,
            "Shared",
            config=config,
            env_name=env_name,
            groups=self.groups,
            stack_name=names.stack_name("etl", "shared"),
        )
        self.group_stacks: list[EtlGroupStack] = []
        for group in self.groups:
            parts = []
            for part in plan_parts(group):
                stack = EtlGroupStack(
                    self,
                    part.component(),
                    config=config,
                    env_name=env_name,
                    part=part,
                    library_zip=self.library_zip,
                    stack_name=names.stack_name("etl", part.component()),
                )
                stack.add_stack_dependency(self.shared, "reads the ETL key, audit table and connections by name/SSM")
                parts.append(stack)
            # A part starts the next part's state machine by name, so later parts deploy first.
            for earlier, later in itertools.pairwise(parts):
                earlier.add_stack_dependency(later, "starts this part's state machine")
            self.group_stacks += parts
